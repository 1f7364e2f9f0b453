#!/usr/bin/env node
// DPoP with panva's openid-client (v6), a client we did not write: it
// discovers tokenmint through its RFC 8414 / OpenID metadata, makes the DPoP
// key and proofs itself, and does a client_credentials grant. Then jose (also
// panva's, used independently of openid-client) checks the token against our
// JWKS (signature, iss, aud, exp, nbf, typ at+jwt) and that `cnf.jkt` is the
// RFC 7638 thumbprint of the proof key openid-client used.
//
// usage: node dpop_openid_client.mjs BASE_URL API_KEY API_SECRET SCOPE ALG...
//
// BASE_URL is the issuer (http://127.0.0.1:PORT, hence allowInsecureRequests).
// For each ALG (ES256, RS256, PS256, EdDSA) it runs the grant twice: once
// discovered at /.well-known/openid-configuration with client_secret_basic,
// once at /.well-known/oauth-authorization-server with client_secret_post.
// It also checks that a wrong secret comes back as an RFC 6749 `invalid_client`
// error openid-client understands. Prints a JSON report on success; exits
// non-zero with the reason on any failure.

import * as client from 'openid-client';
import * as jose from 'jose';

const [base, apiKey, apiSecret, scope, ...algs] = process.argv.slice(2);
if (!base || !apiKey || !apiSecret || scope === undefined || algs.length === 0) {
  console.error('usage: dpop_openid_client.mjs BASE_URL API_KEY API_SECRET SCOPE ALG...');
  process.exit(2);
}

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
      raw: raw ? JSON.parse(raw) : undefined,
    });
    return response;
  };
}

const DISCOVERIES = [
  { algorithm: 'oidc', auth: 'client_secret_basic', make: (s) => client.ClientSecretBasic(s) },
  { algorithm: 'oauth2', auth: 'client_secret_post', make: (s) => client.ClientSecretPost(s) },
];

async function configure(d, secret) {
  const config = await client.discovery(new URL(base), apiKey, undefined, d.make(secret), {
    algorithm: d.algorithm,
    execute: [client.allowInsecureRequests],
  });
  const meta = config.serverMetadata();
  check(meta.issuer === base, `discovered issuer ${meta.issuer}, expected ${base}`);
  check(
    meta.token_endpoint === `${base}/auth/token`,
    `discovered token_endpoint ${meta.token_endpoint}`,
  );
  check(
    (meta.token_endpoint_auth_methods_supported ?? []).includes(d.auth),
    `discovery does not advertise ${d.auth}: ${JSON.stringify(meta.token_endpoint_auth_methods_supported)}`,
  );
  check(
    (meta.grant_types_supported ?? []).includes('client_credentials'),
    `discovery does not advertise client_credentials: ${JSON.stringify(meta.grant_types_supported)}`,
  );
  return config;
}

const jwks = jose.createRemoteJWKSet(new URL(`${base}/.well-known/jwks.json`));

async function exchange(alg, d) {
  const config = await configure(d, apiSecret);
  const meta = config.serverMetadata();
  const sent = [];
  config[client.customFetch] = recorder(sent);

  const keyPair = await client.randomDPoPKeyPair(alg);
  const DPoP = client.getDPoPHandle(config, keyPair);
  const params = scope ? { scope } : {};
  const tokens = await client.clientCredentialsGrant(config, params, { DPoP });

  // What openid-client sent: one POST to the discovered endpoint with a proof.
  check(sent.length === 1, `expected one request, openid-client made ${sent.length}`);
  const [req] = sent;
  check(req.url === meta.token_endpoint && req.method === 'POST', `request ${req.method} ${req.url}`);
  check(req.dpop, 'openid-client sent no DPoP header');
  const proofHeader = jose.decodeProtectedHeader(req.dpop);
  const proofClaims = jose.decodeJwt(req.dpop);
  check(proofHeader.typ === 'dpop+jwt', `proof typ ${proofHeader.typ}`);
  check(proofClaims.htm === 'POST' && proofClaims.htu === meta.token_endpoint, `proof htm/htu ${proofClaims.htm} ${proofClaims.htu}`);
  const form = new URLSearchParams(req.body);
  check(form.get('grant_type') === 'client_credentials', `grant_type ${form.get('grant_type')}`);
  if (d.auth === 'client_secret_basic') {
    check(req.authorization?.startsWith('Basic '), 'no Basic authorization');
    check(!form.has('client_secret'), 'client_secret in the body with Basic');
  } else {
    check(!req.authorization, `unexpected authorization ${req.authorization}`);
    check(form.get('client_id') === apiKey && form.get('client_secret') === apiSecret, 'client credentials not in the body');
  }

  // The answer, as openid-client parsed it (it lower-cases token_type) and
  // as we sent it (RFC 9449 §5: "DPoP"; RFC 6749 §5.1: no-store).
  check(tokens.token_type === 'dpop', `token_type ${tokens.token_type}, expected DPoP`);
  check(req.raw?.token_type === 'DPoP', `token_type on the wire ${req.raw?.token_type}`);
  check(req.contentType?.startsWith('application/json'), `content-type ${req.contentType}`);
  check(/\bno-store\b/.test(req.cacheControl ?? ''), `cache-control ${req.cacheControl}`);
  check(typeof tokens.expires_in === 'number' && tokens.expires_in > 0, `expires_in ${tokens.expires_in}`);
  if (scope) check(tokens.scope === scope, `scope ${tokens.scope}, asked for ${scope}`);

  // Independently, with jose: our JWKS, iss, aud, typ; cnf.jkt = the proof key.
  const { payload, protectedHeader } = await jose.jwtVerify(tokens.access_token, jwks, {
    issuer: base,
    audience: base,
    typ: 'at+jwt',
    requiredClaims: ['exp', 'iat', 'nbf', 'sub', 'jti', 'client_id'],
  });
  const publicJwk = await jose.exportJWK(keyPair.publicKey);
  const jkt = await jose.calculateJwkThumbprint(publicJwk, 'sha256');
  check(
    jkt === (await jose.calculateJwkThumbprint(proofHeader.jwk, 'sha256')),
    'the proof carried another key than the one openid-client generated',
  );
  check(payload.cnf?.jkt === jkt, `cnf ${JSON.stringify(payload.cnf)}, expected {"jkt":"${jkt}"}`);
  check(payload.client_id === apiKey, `client_id ${payload.client_id}, expected ${apiKey}`);
  if (scope) check(payload.scope === scope, `token scope ${payload.scope}, asked for ${scope}`);

  // A second grant with the same handle: a fresh proof (new jti), same binding.
  const again = await client.clientCredentialsGrant(config, params, { DPoP });
  check(sent.length === 2, `expected two requests, openid-client made ${sent.length}`);
  check(jose.decodeJwt(sent[1].dpop).jti !== proofClaims.jti, 'openid-client reused a jti');
  const second = await jose.jwtVerify(again.access_token, jwks, { issuer: base, audience: base });
  check(second.payload.cnf?.jkt === jkt, 'the second token is bound to another key');

  return {
    alg,
    discovery: d.algorithm,
    auth: d.auth,
    proof_alg: proofHeader.alg,
    proof_kty: proofHeader.jwk?.kty,
    token_type: req.raw.token_type,
    token_alg: protectedHeader.alg,
    jkt,
    claims: payload,
  };
}

// A wrong secret: openid-client must surface our RFC 6749 §5.2 answer as
// such. With Basic, §5.2 requires a `WWW-Authenticate` challenge, which
// openid-client reports as a WWWAuthenticateChallengeError (the body stays
// unread, so we read it); with client_secret_post, a ResponseBodyError.
async function wrongSecret(d) {
  const last = apiSecret.at(-1) === 'A' ? 'B' : 'A';
  const config = await configure(d, `${apiSecret.slice(0, -1)}${last}`);
  const DPoP = client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256'));
  let err;
  try {
    await client.clientCredentialsGrant(config, {}, { DPoP });
  } catch (e) {
    err = e;
  }
  check(err, `wrong secret accepted with ${d.auth}`);
  const what = `wrong secret with ${d.auth}: ${err.name}: ${err.message} (${err.code})`;
  check(err.status === 401, `${what}: status ${err.status}`);
  if (d.auth === 'client_secret_basic') {
    check(err instanceof client.WWWAuthenticateChallengeError, what);
    const schemes = err.cause.map((c) => c.scheme);
    check(schemes.includes('basic'), `${what}: challenges ${JSON.stringify(err.cause)}`);
    const body = await err.response.json();
    check(body.error === 'invalid_client', `${what}: body ${JSON.stringify(body)}`);
    return { auth: d.auth, status: err.status, error: body.error, challenges: err.cause };
  }
  check(err instanceof client.ResponseBodyError, what);
  check(err.error === 'invalid_client', `${what}: error ${err.error}`);
  check(!err.response.headers.has('www-authenticate'), `${what}: a challenge without Basic`);
  return { auth: d.auth, status: err.status, error: err.error };
}

const results = [];
for (const alg of algs) {
  for (const d of DISCOVERIES) {
    try {
      results.push(await exchange(alg, d));
    } catch (err) {
      throw new Error(`${alg} via ${d.algorithm} discovery with ${d.auth}: ${err.message}`, { cause: err });
    }
  }
}
const refused = [];
for (const d of DISCOVERIES) refused.push(await wrongSecret(d));

console.log(JSON.stringify({ node: process.version, results, refused }));
