#!/usr/bin/env node
// private_key_jwt (RFC 7523 §2.2) with panva's openid-client (v6), a client
// we did not write: it discovers tokenmint through its RFC 8414 / OpenID
// metadata, builds and signs the client assertion itself (header, iss, sub,
// aud, jti, iat, nbf, exp are all its own choice), and does a
// client_credentials grant. jose (used independently of openid-client) then
// checks the token against our JWKS.
//
// usage: node private_key_jwt_openid_client.mjs BASE_URL SCOPE CLIENTS_JSON
//
// BASE_URL is the issuer (http://127.0.0.1:PORT, hence allowInsecureRequests).
// CLIENTS_JSON is an array of
//   {"name", "client_id", "alg": ES256|RS256|EdDSA, "pkcs8": base64 DER,
//    "kid"?, "discovery": "oidc"|"oauth2", "dpop"?: true,
//    "expect": "token"|"invalid_client"}
// "token": the grant must succeed, and a second one with the same
// configuration too (openid-client makes a fresh assertion, new jti);
// "invalid_client": the grant must fail with our RFC 6749 §5.2 answer, as
// openid-client reports it. Prints a JSON report on success; exits non-zero
// with the reason on any failure.

import * as client from 'openid-client';
import * as jose from 'jose';

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

const [base, scope, clientsJson] = process.argv.slice(2);
if (!base || scope === undefined || !clientsJson) {
  console.error('usage: private_key_jwt_openid_client.mjs BASE_URL SCOPE CLIENTS_JSON');
  process.exit(2);
}
const clients = JSON.parse(clientsJson);

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

// What openid-client actually put on the wire, seen through its customFetch hook.
function recorder(sent) {
  return async (url, options) => {
    const headers = new Headers(options.headers);
    sent.push({
      url: String(url),
      method: options.method,
      authorization: headers.get('authorization'),
      dpop: headers.get('dpop'),
      body: typeof options.body === 'string' ? options.body : options.body?.toString(),
    });
    const response = await fetch(url, options);
    const raw = await response.clone().text();
    Object.assign(sent.at(-1), {
      status: response.status,
      contentType: response.headers.get('content-type'),
      cacheControl: response.headers.get('cache-control'),
      wwwAuthenticate: response.headers.get('www-authenticate'),
      raw: raw ? JSON.parse(raw) : undefined,
    });
    return response;
  };
}

function pem(der) {
  const lines = der.match(/.{1,64}/g).join('\n');
  return `-----BEGIN PRIVATE KEY-----\n${lines}\n-----END PRIVATE KEY-----\n`;
}

async function configure(c) {
  const key = await jose.importPKCS8(pem(c.pkcs8), c.alg);
  const auth = client.PrivateKeyJwt(c.kid === undefined ? key : { key, kid: c.kid });
  const config = await client.discovery(new URL(base), c.client_id, undefined, auth, {
    algorithm: c.discovery,
    execute: [client.allowInsecureRequests],
  });
  const meta = config.serverMetadata();
  check(meta.issuer === base, `discovered issuer ${meta.issuer}, expected ${base}`);
  check(meta.token_endpoint === `${base}/auth/token`, `discovered token_endpoint ${meta.token_endpoint}`);
  check(
    (meta.token_endpoint_auth_methods_supported ?? []).includes('private_key_jwt'),
    `discovery does not advertise private_key_jwt: ${JSON.stringify(meta.token_endpoint_auth_methods_supported)}`,
  );
  const sent = [];
  config[client.customFetch] = recorder(sent);
  return { config, meta, sent };
}

// The one request openid-client sent, checked as RFC 7523 §2.2 and
// OpenID Connect Core §9 describe it; returns the assertion's parts.
function checkRequest(c, req, meta) {
  check(req.url === meta.token_endpoint && req.method === 'POST', `request ${req.method} ${req.url}`);
  check(!req.authorization, `unexpected authorization ${req.authorization}`);
  check(Boolean(req.dpop) === Boolean(c.dpop), `DPoP header ${req.dpop}`);
  const form = new URLSearchParams(req.body);
  check(form.get('grant_type') === 'client_credentials', `grant_type ${form.get('grant_type')}`);
  check(!form.has('client_secret'), 'a client_secret in the body');
  check(form.get('client_id') === c.client_id, `client_id ${form.get('client_id')}`);
  check(form.get('client_assertion_type') === ASSERTION_TYPE, `client_assertion_type ${form.get('client_assertion_type')}`);
  const assertion = form.get('client_assertion');
  check(assertion, 'no client_assertion');
  const header = jose.decodeProtectedHeader(assertion);
  const claims = jose.decodeJwt(assertion);
  check(header.kid === c.kid, `assertion kid ${header.kid}, expected ${c.kid}`);
  check(claims.iss === c.client_id && claims.sub === c.client_id, `assertion iss/sub ${claims.iss} ${claims.sub}`);
  check(claims.jti && claims.exp > claims.iat, `assertion jti/iat/exp ${JSON.stringify(claims)}`);
  return { header, claims };
}

// openid-client's DPoP handle when the case asks for one (a fresh ES256 key).
async function dpopOptions(c, config) {
  if (!c.dpop) return { options: {} };
  const keyPair = await client.randomDPoPKeyPair('ES256');
  return { keyPair, options: { DPoP: client.getDPoPHandle(config, keyPair) } };
}

const jwks = jose.createRemoteJWKSet(new URL(`${base}/.well-known/jwks.json`));

async function grant(c) {
  const { config, meta, sent } = await configure(c);
  const algs = meta.token_endpoint_auth_signing_alg_values_supported ?? [];
  const { keyPair: dpopKey, options } = await dpopOptions(c, config);
  const params = scope ? { scope } : {};
  const tokens = await client.clientCredentialsGrant(config, params, options);

  check(sent.length === 1, `expected one request, openid-client made ${sent.length}`);
  const [req] = sent;
  const assertion = checkRequest(c, req, meta);
  check(algs.includes(assertion.header.alg), `openid-client signed ${assertion.header.alg}, discovery lists ${JSON.stringify(algs)}`);

  // The answer, as openid-client parsed it (it lower-cases token_type) and as
  // we sent it.
  const tokenType = c.dpop ? 'DPoP' : 'Bearer';
  check(tokens.token_type === tokenType.toLowerCase(), `token_type ${tokens.token_type}`);
  check(req.raw?.token_type === tokenType, `token_type on the wire ${req.raw?.token_type}`);
  check(req.contentType?.startsWith('application/json'), `content-type ${req.contentType}`);
  check(/\bno-store\b/.test(req.cacheControl ?? ''), `cache-control ${req.cacheControl}`);
  check(typeof tokens.expires_in === 'number' && tokens.expires_in > 0, `expires_in ${tokens.expires_in}`);
  if (scope) check(tokens.scope === scope, `scope ${tokens.scope}, asked for ${scope}`);

  // Independently, with jose: our JWKS, iss, aud, typ.
  const { payload, protectedHeader } = await jose.jwtVerify(tokens.access_token, jwks, {
    issuer: base,
    audience: base,
    typ: 'at+jwt',
    requiredClaims: ['exp', 'iat', 'nbf', 'sub', 'jti', 'client_id'],
  });
  check(payload.client_id === c.client_id, `client_id ${payload.client_id}, expected ${c.client_id}`);
  if (c.dpop) {
    const jkt = await jose.calculateJwkThumbprint(await jose.exportJWK(dpopKey.publicKey), 'sha256');
    check(payload.cnf?.jkt === jkt, `cnf ${JSON.stringify(payload.cnf)}, expected {"jkt":"${jkt}"}`);
  }

  // A second grant with the same configuration: a new assertion (new jti),
  // which the server's replay check must let through.
  const again = await client.clientCredentialsGrant(config, params, options);
  check(sent.length === 2, `expected two requests, openid-client made ${sent.length}`);
  const second = checkRequest(c, sent[1], meta);
  check(second.claims.jti !== assertion.claims.jti, 'openid-client reused a jti');
  const verified = await jose.jwtVerify(again.access_token, jwks, { issuer: base, audience: base });
  check(verified.payload.client_id === c.client_id, 'the second token is for another client');

  return {
    name: c.name,
    alg: c.alg,
    discovery: c.discovery,
    assertion_header: assertion.header,
    assertion_claims: assertion.claims,
    access_token: tokens.access_token,
    token_type: req.raw.token_type,
    expires_in: tokens.expires_in,
    scope: tokens.scope,
    token_alg: protectedHeader.alg,
    claims: payload,
    second_access_token: again.access_token,
  };
}

// A refused assertion: openid-client must surface our RFC 6749 §5.2 answer
// as a ResponseBodyError (no Basic credentials were sent, so no
// WWW-Authenticate challenge is due).
async function refused(c) {
  const { config, meta, sent } = await configure(c);
  const { options } = await dpopOptions(c, config);
  let err;
  try {
    await client.clientCredentialsGrant(config, scope ? { scope } : {}, options);
  } catch (e) {
    err = e;
  }
  check(err, 'the assertion was accepted');
  check(sent.length === 1, `expected one request, openid-client made ${sent.length}`);
  const assertion = checkRequest(c, sent[0], meta);
  const what = `${err.name}: ${err.message} (${err.code})`;
  check(err instanceof client.ResponseBodyError, what);
  check(err.status === 401, `${what}: status ${err.status}`);
  check(err.error === 'invalid_client', `${what}: error ${err.error}`);
  check(!sent[0].wwwAuthenticate, `${what}: a challenge without Basic: ${sent[0].wwwAuthenticate}`);
  return {
    name: c.name,
    alg: c.alg,
    assertion_header: assertion.header,
    status: err.status,
    error: err.error,
    error_description: err.error_description,
  };
}

const results = [];
const refusals = [];
for (const c of clients) {
  try {
    if (c.expect === 'token') results.push(await grant(c));
    else if (c.expect === 'invalid_client') refusals.push(await refused(c));
    else throw new Error(`unknown expectation ${c.expect}`);
  } catch (err) {
    throw new Error(`${c.name} (${c.alg}, expecting ${c.expect}): ${err.message}`, { cause: err });
  }
}

console.log(JSON.stringify({ node: process.version, results, refused: refusals }));
