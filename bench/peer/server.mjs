// The peer for bench/run: node `oidc-provider` doing the same job as
// tokenmint's warm exchange — the OAuth 2.0 client_credentials grant, client
// authenticated with HTTP Basic (client_secret_basic), answered with an ES256
// JWT access token (resourceIndicators feature, accessTokenFormat "jwt").
// No persistence beyond the default in-memory adapter (JWT access tokens are
// not stored at all).
//
// node:cluster with PEER_WORKERS workers (default 2, like tokenmint's worker
// count on the 2-core benchmark machine) sharing one port.
//
// Environment:
//   PEER_PORT       port on 127.0.0.1 (default 18484)
//   PEER_WORKERS    cluster workers (default 2)
//   PEER_CLIENTS    number of registered clients (default 16)
//   PEER_PAIRS_OUT  file to write "client_id client_secret" lines to (the
//                   pairs file bench/wrk/basic.lua cycles through)
//
// Only ever listens on 127.0.0.1.

import cluster from 'node:cluster';
import * as crypto from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';

const HOST = '127.0.0.1';
const PORT = Number(process.env.PEER_PORT || 18484);
const WORKERS = Math.max(1, Number(process.env.PEER_WORKERS || 2));
const CLIENTS = Math.max(1, Number(process.env.PEER_CLIENTS || 16));
const RESOURCE = 'https://api.bench.example';

if (cluster.isPrimary) {
  // One signing key and one client list for every worker.
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'ES256' };
  const clients = Array.from({ length: CLIENTS }, (_, i) => ({
    client_id: `peer_client_${i}`,
    client_secret: crypto.randomBytes(32).toString('base64url').replace(/[-_]/g, 'x'),
  }));
  if (process.env.PEER_PAIRS_OUT) {
    writeFileSync(
      process.env.PEER_PAIRS_OUT,
      clients.map((c) => `${c.client_id} ${c.client_secret}\n`).join(''),
    );
  }
  const shared = {
    PEER_JWK: JSON.stringify(jwk),
    PEER_CLIENT_LIST: JSON.stringify(clients),
    PEER_COOKIE_KEY: crypto.randomBytes(32).toString('base64url'),
  };
  let online = 0;
  for (let i = 0; i < WORKERS; i += 1) {
    cluster.fork(shared).on('listening', () => {
      online += 1;
      if (online === WORKERS) {
        console.error(`peer: oidc-provider listening on http://${HOST}:${PORT} with ${WORKERS} workers`);
      }
    });
  }
  let stopping = false;
  cluster.on('exit', (worker, code, signal) => {
    if (!stopping) {
      console.error(`peer: worker ${worker.process.pid} exited (${signal || code}); stopping`);
      stopping = true;
      for (const w of Object.values(cluster.workers)) w.kill();
      process.exitCode = 1;
    }
  });
  for (const sig of ['SIGTERM', 'SIGINT']) {
    process.on(sig, () => {
      stopping = true;
      for (const w of Object.values(cluster.workers)) w.kill();
      setTimeout(() => process.exit(0), 2000).unref();
    });
  }
} else {
  const { default: Provider } = await import('oidc-provider');
  const jwk = JSON.parse(process.env.PEER_JWK);
  const clients = JSON.parse(process.env.PEER_CLIENT_LIST).map((c) => ({
    ...c,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'read write',
  }));

  const provider = new Provider(`http://${HOST}:${PORT}`, {
    clients,
    jwks: { keys: [jwk] },
    cookies: { keys: [process.env.PEER_COOKIE_KEY] },
    clientDefaults: {
      grant_types: ['client_credentials'],
      response_types: [],
      id_token_signed_response_alg: 'ES256',
      token_endpoint_auth_method: 'client_secret_basic',
    },
    scopes: ['read', 'write'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'read write',
          audience: RESOURCE,
          accessTokenTTL: 3600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
  });
  provider.on('server_error', (ctx, err) => console.error('peer: server_error', err));

  http.createServer(provider.callback()).listen(PORT, HOST);
}
