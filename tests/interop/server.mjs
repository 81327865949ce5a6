// oidc-provider 9 based authorization server for tower-oauth2's interop tests.
//
// Protocol: prints exactly one line to stdout, `READY http://127.0.0.1:<port>`,
// once it accepts requests. Everything else goes to stderr. Exits on
// SIGTERM/SIGINT and when its stdin reaches EOF (so an orphaned server dies
// together with the test process that spawned it).
//
// See README.md in this folder for the clients, environment variables and the
// test-only routes under /test/.

import * as crypto from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

// oidc-provider prints its NOTICE lines with console.info (stdout). Stdout is
// reserved for the READY line, so route every console method to stderr before
// the library is loaded (hence the dynamic import below).
for (const method of ['log', 'info', 'debug']) {
  // eslint-disable-next-line no-console
  console[method] = console.error;
}

const { default: Provider, errors } = await import('oidc-provider');

// ---------------------------------------------------------------------------
// Settings from the environment
// ---------------------------------------------------------------------------

function intEnv(name, fallback, { min = 0 } = {}) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    process.stderr.write(`invalid ${name}=${JSON.stringify(raw)}: expected an integer >= ${min}\n`);
    process.exit(2);
  }
  return value;
}

const PORT = intEnv('PORT', 0);
const ACCESS_TOKEN_TTL = intEnv('ACCESS_TOKEN_TTL', 60, { min: 1 });
const DEVICE_CODE_TTL = intEnv('DEVICE_CODE_TTL', 600, { min: 1 });
const DEVICE_INTERVAL = intEnv('DEVICE_INTERVAL', 1, { min: 0 });
const REFRESH_TOKEN_TTL = 24 * 60 * 60;
const DEVICE_CODE_GRACE = 10 * 60;
const EXIT_ON_STDIN_EOF = process.env.EXIT_ON_STDIN_EOF !== '0';
// RFC 9126 §5: `1` makes every client use PAR (the server-wide requirement, advertised as
// `require_pushed_authorization_requests: true` in the discovery document).
const REQUIRE_PAR = intEnv('REQUIRE_PAR', 0) !== 0;

const TEST_ACCOUNT_ID = 'test-user';
const SCOPES = ['openid', 'offline_access', 'api:read', 'api:write'];
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

const ROUTES = {
  authorization: '/auth',
  code_verification: '/device',
  device_authorization: '/device/auth',
  end_session: '/session/end',
  introspection: '/token/introspection',
  jwks: '/jwks',
  pushed_authorization_request: '/request',
  revocation: '/token/revocation',
  token: '/token',
  userinfo: '/me',
};

function log(...args) {
  process.stderr.write(`[interop-server] ${args.join(' ')}\n`);
}

// ---------------------------------------------------------------------------
// Unbounded Map-based adapter (the stock MemoryAdapter is an LRU capped at
// 1000 entries, which evicts live tokens during long test runs).
// ---------------------------------------------------------------------------

const store = new Map(); // key -> { payload, expiresAt (ms epoch or Infinity) }
const GRANTABLE = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'PreAuthorizedCode',
]);

function storeGet(key) {
  const entry = store.get(key);
  if (!entry) return undefined;
  if (entry.expiresAt <= Date.now()) {
    store.delete(key);
    return undefined;
  }
  return entry.payload;
}

function storeSet(key, payload, expiresIn) {
  const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity;
  store.set(key, { payload, expiresAt });
}

// Periodically drop expired entries so memory stays bounded by live data.
setInterval(() => {
  const now = Date.now();
  for (const [key, entry] of store) {
    if (entry.expiresAt <= now) store.delete(key);
  }
}, 60_000).unref();

class MapAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    // Keep device codes around for a while after they expire so that polling
    // an expired one yields `expired_token` (oidc-provider checks the payload's
    // own `exp`) rather than `invalid_grant` (device code not found).
    if (this.model === 'DeviceCode' && typeof expiresIn === 'number') {
      expiresIn += DEVICE_CODE_GRACE;
    }
    storeSet(key, structuredClone(payload), expiresIn);

    if (this.model === 'Session' && payload.uid) {
      storeSet(`sessionUid:${payload.uid}`, id, expiresIn);
    }
    if (payload.userCode) {
      storeSet(`userCode:${payload.userCode}`, id, expiresIn);
    }
    if (GRANTABLE.has(this.model) && payload.grantId) {
      const grantKey = `grant:${payload.grantId}`;
      let members = storeGet(grantKey);
      if (!(members instanceof Set)) {
        members = new Set();
        store.set(grantKey, { payload: members, expiresAt: Infinity });
      }
      members.add(key);
    }
  }

  async find(id) {
    const payload = storeGet(this.key(id));
    return payload === undefined ? undefined : structuredClone(payload);
  }

  async findByUserCode(userCode) {
    const id = storeGet(`userCode:${userCode}`);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUid(uid) {
    const id = storeGet(`sessionUid:${uid}`);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id) {
    const payload = storeGet(this.key(id));
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    store.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    const grantKey = `grant:${grantId}`;
    const members = storeGet(grantKey);
    if (members instanceof Set) {
      for (const key of members) store.delete(key);
    }
    store.delete(grantKey);
  }
}

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

const REDIRECT_URIS = ['http://127.0.0.1/cb'];
const ALL_GRANTS = ['client_credentials', 'refresh_token', DEVICE_GRANT, 'authorization_code'];

// Public halves of pkjwt-client.key.pem (EC P-256, ES256),
// pkjwt-client-rsa.key.pem (RSA 2048, RS256 or PS256) and
// pkjwt-client-ed25519.key.pem (Ed25519, EdDSA).
const PKJWT_JWKS = {
  keys: [
    {
      kty: 'EC',
      crv: 'P-256',
      x: 'UR7fyxlKu8g1hwQ2zvdt8RDUjgxcpBsKwMDv_cBKmVk',
      y: '90q2tPIVWBBSVlqkp5TYa4dSheYA5rByTNqMihfm-kg',
      kid: 'pkjwt-client-key-1',
      alg: 'ES256',
      use: 'sig',
    },
    {
      kty: 'RSA',
      n: 'k_lWwgtcIJnivdN_18bAYh6TXIRw1qzNXjuc62bATQzfkpBxgFJPD9N6EYk3JI6EbhoAj5GN5TkRN-UtMo0DYnGzdytjLOziCQxhv_PKJaGHd0Ksy-uqbgMsFtCMw5jTguTno1z_bXAYhMelpcDJDzqbqpEr5m1W-QnMvh-_APq4XtSvyjzEXYAtCzka2lHvsRLqqp6ECFAG3fhT_iQuoSlTJnB8zLzMDkocqekrhtvq9Lo4FntOcnfAQHLGuC46vq_U0Yrs_p4_arjeBeANDyJScwOFo7cRUM6KmrsPpOnK9NvksWPL55IVkHcm2ZSUwJ3ONgPJqyI_hrJsbYfzNw',
      e: 'AQAB',
      kid: 'pkjwt-client-rsa-1',
      use: 'sig',
    },
    // Public half of pkjwt-client-ed25519.key.pem (Ed25519, EdDSA).
    {
      kty: 'OKP',
      crv: 'Ed25519',
      x: 'tRc9B_aZlLPmpbXvCe39uub07a8X5etIKlLxggF3gaY',
      kid: 'pkjwt-client-ed25519-1',
      alg: 'EdDSA',
      use: 'sig',
    },
  ],
};

// Grant types oidc-provider has no built-in handler for (token exchange, JWT bearer, password)
// live in grants/*.mjs, one file each. Each module exports:
//   grantType:   the `grant_type` value it handles;
//   parameters:  the form fields its handler reads (besides grant_type);
//   dupes:       (optional) the fields that may be repeated;
//   clients:     the ids of the clients in CLIENTS allowed to use it;
//   handler(ctx, env): the grant handler (oidc-provider's registerGrantType: sets ctx.body);
//     env = { issuer, tokenUrl, log, pkjwtJwks, accountId, scopes, accessTokenTtl, provider }.
const GRANTS_DIR = new URL('./grants/', import.meta.url);
const EXTENSION_GRANTS = [];
for (const file of readdirSync(fileURLToPath(GRANTS_DIR)).filter((f) => f.endsWith('.mjs')).sort()) {
  EXTENSION_GRANTS.push(await import(pathToFileURL(fileURLToPath(new URL(file, GRANTS_DIR))).href));
}

// Mutual TLS (RFC 8705): certificates and keys in mtls/ (see README.md, "Mutual TLS").
const MTLS_DIR = new URL('./mtls/', import.meta.url);
const mtlsFile = (name) => readFileSync(new URL(name, MTLS_DIR));
const MTLS_CA = mtlsFile('ca.crt.pem');
// The self-signed client's certificate, registered as the x5c of its JWK (RFC 8705 §2.2).
const SELF_SIGNED_CERT = new crypto.X509Certificate(mtlsFile('self-signed-client.crt.pem'));
const SELF_SIGNED_JWKS = {
  keys: [{
    ...SELF_SIGNED_CERT.publicKey.export({ format: 'jwk' }),
    kid: 'self-signed-client-cert',
    use: 'sig',
    x5c: [SELF_SIGNED_CERT.raw.toString('base64')],
  }],
};

const CLIENTS = [
  {
    client_id: 'basic-client',
    client_secret: 's3cr:et%+ &/=?',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ALL_GRANTS,
    response_types: ['code'],
    redirect_uris: REDIRECT_URIS,
  },
  {
    client_id: 'post-client',
    client_secret: 'p0st:secret+%',
    token_endpoint_auth_method: 'client_secret_post',
    grant_types: ALL_GRANTS,
    response_types: ['code'],
    redirect_uris: REDIRECT_URIS,
  },
  {
    client_id: 'public-client',
    token_endpoint_auth_method: 'none',
    grant_types: ['refresh_token', DEVICE_GRANT, 'authorization_code'],
    response_types: ['code'],
    redirect_uris: REDIRECT_URIS,
  },
  // The authorization code flow (tests/interop_login.rs): a confidential client that must push
  // its authorization requests (RFC 9126 §2.4 client metadata).
  {
    client_id: 'par-client',
    client_secret: 'p4r:secret',
    token_endpoint_auth_method: 'client_secret_basic',
    require_pushed_authorization_requests: true,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: REDIRECT_URIS,
  },
  {
    client_id: 'jwt-secret-client',
    client_secret: 'jwt-secret-0123456789abcdef0123456789abcdef',
    token_endpoint_auth_method: 'client_secret_jwt',
    grant_types: ['client_credentials', 'refresh_token'],
    response_types: [],
    redirect_uris: REDIRECT_URIS,
  },
  {
    client_id: 'pkjwt-client',
    token_endpoint_auth_method: 'private_key_jwt',
    jwks: PKJWT_JWKS,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: REDIRECT_URIS,
  },
  // The JWT bearer grant (grants/jwt_bearer.mjs): a public client, and a client named after
  // the Google-style service account of service-account.key.pem (public too: the assertion is
  // the credential).
  {
    client_id: 'jwt-bearer-client',
    token_endpoint_auth_method: 'none',
    grant_types: [],
    response_types: [],
    redirect_uris: REDIRECT_URIS,
  },
  {
    client_id: 'robot@interop-project.iam.gserviceaccount.com',
    token_endpoint_auth_method: 'none',
    grant_types: [],
    response_types: [],
    redirect_uris: REDIRECT_URIS,
  },
  // RFC 8705 §2.1: a certificate issued by mtls/ca.crt.pem with this subject DN. Its access
  // tokens are bound to the certificate (cnf.x5t#S256, RFC 8705 §3).
  {
    client_id: 'tls-client',
    token_endpoint_auth_method: 'tls_client_auth',
    tls_client_auth_subject_dn: 'CN=tls-client,O=tower-oauth2 interop',
    tls_client_certificate_bound_access_tokens: true,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: REDIRECT_URIS,
  },
  // RFC 8705 §2.2: the self-signed certificate of its jwks (x5c); tokens not bound.
  {
    client_id: 'self-signed-client',
    token_endpoint_auth_method: 'self_signed_tls_client_auth',
    jwks: SELF_SIGNED_JWKS,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: REDIRECT_URIS,
  },
  {
    client_id: 'weird:client id%',
    client_secret: 'w:e%i+r d',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: REDIRECT_URIS,
  },
];

// ---------------------------------------------------------------------------
// HTTP server first: the issuer needs the real port.
// ---------------------------------------------------------------------------

const counters = { token: 0, protected: 0 };
let provider;
let providerCallback;

function onRequest(req, res) {
  handle(req, res).catch((err) => {
    log('unhandled error:', err?.stack || String(err));
    if (!res.headersSent) {
      sendJson(res, 500, { error: 'server_error', error_description: String(err?.message || err) });
    } else {
      res.destroy();
    }
  });
}

const server = http.createServer(onRequest);
// The same handler over TLS, for the mTLS endpoint aliases (RFC 8705 §5). A client
// certificate is asked for but not required: oidc-provider decides (`features.mTLS` below);
// `socket.authorized` says whether it chains to the test CA.
const tlsServer = https.createServer({
  cert: mtlsFile('server.crt.pem'),
  key: mtlsFile('server.key.pem'),
  ca: MTLS_CA,
  requestCert: true,
  rejectUnauthorized: false,
}, onRequest);

for (const [name, listener] of [['http', server], ['https', tlsServer]]) {
  // Outlive typical client pool idle timeouts (hyper-util: 90 s) so the client,
  // not the server, closes idle keep-alive connections; avoids the race where a
  // pooled connection is reused just as the server times it out.
  listener.keepAliveTimeout = 120_000;
  listener.headersTimeout = 125_000;

  listener.on('error', (err) => {
    log(`${name} server error:`, err?.stack || String(err));
    process.exit(1);
  });
}

await new Promise((resolve) => server.listen(PORT, '127.0.0.1', resolve));
const { port } = server.address();
const ISSUER = `http://127.0.0.1:${port}`;
await new Promise((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
const MTLS_ORIGIN = `https://127.0.0.1:${tlsServer.address().port}`;

// RFC 4514 form of a certificate's subject (node lists the RDNs most significant first, one
// per line; RFC 4514 reverses them). Enough for the test certificates' plain values.
function subjectDn(cert) {
  return cert.subject.split('\n').reverse().join(',');
}

function peerCertificate(ctx) {
  const { socket } = ctx;
  if (typeof socket?.getPeerX509Certificate !== 'function') return undefined;
  return socket.getPeerX509Certificate() || undefined;
}

// Ephemeral signing key for ID tokens (nothing in the tests verifies them
// across restarts).
const { privateKey: idTokenKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const idTokenJwk = { ...idTokenKey.export({ format: 'jwk' }), kid: 'interop-rs256', alg: 'RS256', use: 'sig' };

const configuration = {
  adapter: MapAdapter,
  clients: CLIENTS,
  jwks: { keys: [idTokenJwk] },
  cookies: { keys: ['interop-cookie-key-0123456789abcdef'] },
  clockTolerance: 0,
  responseTypes: ['code'],
  scopes: SCOPES,
  claims: {
    openid: ['sub'],
    acr: null,
    sid: null,
    auth_time: null,
    iss: null,
  },
  routes: ROUTES,
  // oidc-provider's default list plus the two RFC 8705 methods (enabled in features.mTLS).
  clientAuthMethods: [
    'client_secret_basic',
    'client_secret_jwt',
    'client_secret_post',
    'private_key_jwt',
    'none',
    'tls_client_auth',
    'self_signed_tls_client_auth',
  ],
  features: {
    // The login and consent pages at /interaction/:uid (HTML forms: any login, any password;
    // "[ Cancel ]" links to /interaction/:uid/abort, which answers access_denied).
    devInteractions: { enabled: true },
    // RFC 9126 at /request (on by default in oidc-provider 9; spelled out with the
    // REQUIRE_PAR switch). RFC 9207 `iss` is always on in oidc-provider 9: every authorization
    // response carries it and discovery has authorization_response_iss_parameter_supported.
    pushedAuthorizationRequests: {
      enabled: true,
      requirePushedAuthorizationRequests: REQUIRE_PAR,
    },
    deviceFlow: { enabled: true },
    // Any authenticated client may introspect any token.
    introspection: { enabled: true, allowedPolicy: async () => true },
    // Same policy as oidc-provider's default, minus its "you should change
    // this" notice: a client may only revoke its own tokens.
    revocation: {
      enabled: true,
      allowedPolicy: async (ctx, client, token) => {
        if (token.clientId !== client.clientId) {
          if (client.clientAuthMethod === 'none') return false;
          throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
        }
        return true;
      },
    },
    clientCredentials: { enabled: true },
    // No resource indicators: every token is opaque, audience-less, and
    // client_credentials returns the requested scope as-is.
    resourceIndicators: { enabled: false },
    userinfo: { enabled: true },
    // RFC 8705: client certificates on the https listener only (a plain-http request has
    // none); certificate-bound access tokens for clients registered with
    // tls_client_certificate_bound_access_tokens.
    mTLS: {
      enabled: true,
      certificateBoundAccessTokens: true,
      selfSignedTlsClientAuth: true,
      tlsClientAuth: true,
      getCertificate: peerCertificate,
      certificateAuthorized: (ctx) => ctx.socket?.authorized === true,
      certificateSubjectMatches: (ctx, property, expected) => {
        const cert = peerCertificate(ctx);
        if (!cert) return false;
        switch (property) {
          case 'tls_client_auth_subject_dn':
            return subjectDn(cert) === expected;
          case 'tls_client_auth_san_dns':
            return cert.checkHost(expected, { subject: 'never' }) === expected;
          default:
            return false;
        }
      },
    },
  },
  // RFC 8705 §5: the endpoints that take certificate-based client authentication, on the
  // https listener. The plain ones stay as they are for every other client.
  discovery: {
    mtls_endpoint_aliases: {
      token_endpoint: `${MTLS_ORIGIN}${ROUTES.token}`,
      revocation_endpoint: `${MTLS_ORIGIN}${ROUTES.revocation}`,
      introspection_endpoint: `${MTLS_ORIGIN}${ROUTES.introspection}`,
      device_authorization_endpoint: `${MTLS_ORIGIN}${ROUTES.device_authorization}`,
      userinfo_endpoint: `${MTLS_ORIGIN}${ROUTES.userinfo}`,
    },
  },
  ttl: {
    AccessToken: () => ACCESS_TOKEN_TTL,
    ClientCredentials: () => ACCESS_TOKEN_TTL,
    RefreshToken: () => REFRESH_TOKEN_TTL,
    DeviceCode: () => DEVICE_CODE_TTL,
    AuthorizationCode: () => 60,
    IdToken: () => 3600,
    Grant: () => REFRESH_TOKEN_TTL,
    Session: () => REFRESH_TOKEN_TTL,
    Interaction: () => 600,
  },
  rotateRefreshToken: true,
  issueRefreshToken: async (ctx, client, source) => {
    if (!client.grantTypeAllowed('refresh_token')) return false;
    const grantType = ctx.oidc.params?.grant_type;
    if (grantType === 'refresh_token' || grantType === DEVICE_GRANT) return true;
    return source.scopes.has('offline_access');
  },
  expiresWithSession: async () => false,
  pkce: { required: () => true },
  findAccount: async (ctx, sub) => ({
    accountId: sub,
    async claims() {
      return { sub };
    },
  }),
  renderError: async (ctx, out) => {
    ctx.type = 'json';
    ctx.body = out;
  },
};

for (const grant of EXTENSION_GRANTS) {
  for (const id of grant.clients) {
    const client = CLIENTS.find((c) => c.client_id === id);
    if (!client) throw new Error(`grants: unknown client ${id} for ${grant.grantType}`);
    client.grant_types = [...client.grant_types, grant.grantType];
  }
}

provider = new Provider(ISSUER, configuration);

const grantEnv = {
  issuer: ISSUER,
  tokenUrl: `${ISSUER}${ROUTES.token}`,
  log,
  pkjwtJwks: PKJWT_JWKS,
  accountId: TEST_ACCOUNT_ID,
  scopes: SCOPES,
  accessTokenTtl: ACCESS_TOKEN_TTL,
  provider,
};
for (const grant of EXTENSION_GRANTS) {
  provider.registerGrantType(grant.grantType, (ctx) => grant.handler(ctx, grantEnv), grant.parameters, grant.dupes);
}
provider.on('server_error', (ctx, err) => log('server_error:', err?.stack || String(err)));

// The device authorization response has no `interval` by default; add one.
provider.use(async (ctx, next) => {
  await next();
  if (
    ctx.method === 'POST'
    && ctx.path === ROUTES.device_authorization
    && ctx.status === 200
    && ctx.body
    && typeof ctx.body === 'object'
    && 'device_code' in ctx.body
  ) {
    ctx.body = { ...ctx.body, interval: DEVICE_INTERVAL };
  }
});

providerCallback = provider.callback();

// ---------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------

function sendJson(res, status, body, headers = {}) {
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': data.length,
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(data);
}

function sendEmpty(res, status) {
  res.writeHead(status, { 'content-length': 0 });
  res.end();
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const raw = Buffer.concat(chunks).toString('utf8');
  const type = (req.headers['content-type'] || '').toLowerCase();
  if (!raw) return {};
  if (type.includes('application/json')) {
    try {
      const parsed = JSON.parse(raw);
      return parsed && typeof parsed === 'object' ? parsed : {};
    } catch {
      return {};
    }
  }
  return Object.fromEntries(new URLSearchParams(raw));
}

async function handle(req, res) {
  const url = new URL(req.url, ISSUER);

  if (url.pathname === ROUTES.token) {
    counters.token += 1;
  }

  if (url.pathname.startsWith('/test/')) {
    await handleTestRoute(req, res, url);
    return;
  }

  if (!providerCallback) {
    sendJson(res, 503, { error: 'temporarily_unavailable', error_description: 'starting up' });
    return;
  }
  providerCallback(req, res);
}

function normalizeUserCode(input) {
  // Same normalization oidc-provider applies before storing the user code.
  return String(input).toUpperCase().replace(/\W/g, '');
}

async function findPendingDeviceCode(res, body) {
  const userCode = body.user_code;
  if (typeof userCode !== 'string' || !userCode) {
    sendJson(res, 400, { error: 'invalid_request', error_description: 'user_code is required' });
    return undefined;
  }
  const code = await provider.DeviceCode.findByUserCode(normalizeUserCode(userCode), {
    ignoreExpiration: true,
  });
  if (!code) {
    sendJson(res, 404, { error: 'not_found', error_description: 'unknown user_code' });
    return undefined;
  }
  if (code.isExpired) {
    sendJson(res, 410, { error: 'expired_token', error_description: 'device code expired' });
    return undefined;
  }
  if (code.accountId || code.error || code.consumed) {
    sendJson(res, 409, { error: 'already_used', error_description: 'device code already approved, denied or used' });
    return undefined;
  }
  return code;
}

async function approveDevice(req, res) {
  const body = await readBody(req);
  const code = await findPendingDeviceCode(res, body);
  if (!code) return;

  const requested = String(code.params?.scope || '').split(' ').filter(Boolean);
  const granted = [...new Set(requested.filter((s) => SCOPES.includes(s)))];

  const grant = new provider.Grant({ accountId: TEST_ACCOUNT_ID, clientId: code.clientId });
  if (granted.length) grant.addOIDCScope(granted.join(' '));
  const grantId = await grant.save();

  Object.assign(code, {
    accountId: TEST_ACCOUNT_ID,
    authTime: Math.floor(Date.now() / 1000),
    amr: ['pwd'],
    grantId,
    scope: granted.length ? granted.join(' ') : undefined,
  });
  await code.save();

  log(`device code approved: client=${code.clientId} scope=${JSON.stringify(code.scope || '')}`);
  sendJson(res, 200, {
    approved: true,
    client_id: code.clientId,
    account_id: TEST_ACCOUNT_ID,
    scope: code.scope || '',
  });
}

async function denyDevice(req, res) {
  const body = await readBody(req);
  const code = await findPendingDeviceCode(res, body);
  if (!code) return;

  Object.assign(code, {
    error: 'access_denied',
    errorDescription: 'End-User denied the authorization request',
  });
  await code.save();

  log(`device code denied: client=${code.clientId}`);
  sendJson(res, 200, { denied: true, client_id: code.clientId });
}

async function findAccessToken(value) {
  // Opaque token values are base64url; skip obviously malformed input.
  if (!/^[A-Za-z0-9_-]{1,512}$/.test(value)) return undefined;
  for (const Model of [provider.AccessToken, provider.ClientCredentials]) {
    // eslint-disable-next-line no-await-in-loop
    const token = await Model.find(value);
    if (token) return token;
  }
  return undefined;
}

async function protectedResource(req, res) {
  counters.protected += 1;
  const header = req.headers.authorization || '';
  const match = /^Bearer +([^ ]+) *$/i.exec(header);
  const reject = (status = 401) => sendJson(
    res,
    status,
    { ok: false, error: 'invalid_token' },
    { 'www-authenticate': 'Bearer error="invalid_token"' },
  );
  if (!match) {
    reject();
    return;
  }
  const token = await findAccessToken(match[1]);
  if (!token || token.isExpired || token.consumed) {
    reject();
    return;
  }
  sendJson(res, 200, {
    ok: true,
    client_id: token.clientId,
    jti_tail: token.jti.slice(-4),
    scope: token.scope || '',
    exp: token.exp,
  });
}

async function handleTestRoute(req, res, url) {
  const { pathname } = url;
  const { method } = req;

  if (pathname === '/test/approve-device' && method === 'POST') return approveDevice(req, res);
  if (pathname === '/test/deny-device' && method === 'POST') return denyDevice(req, res);
  if (pathname === '/test/token-requests' && method === 'GET') {
    return sendJson(res, 200, { count: counters.token });
  }
  if (pathname === '/test/protected-requests' && method === 'GET') {
    return sendJson(res, 200, { count: counters.protected });
  }
  if (pathname === '/test/reset' && method === 'POST') {
    counters.token = 0;
    counters.protected = 0;
    return sendEmpty(res, 204);
  }
  if (pathname === '/test/protected') return protectedResource(req, res);
  return sendJson(res, 404, { error: 'not_found', error_description: `no test route ${method} ${pathname}` });
}

// ---------------------------------------------------------------------------
// Lifecycle
// ---------------------------------------------------------------------------

let shuttingDown = false;
function shutdown(reason) {
  if (shuttingDown) return;
  shuttingDown = true;
  log(`shutting down (${reason})`);
  for (const listener of [server, tlsServer]) {
    listener.close();
    listener.closeAllConnections?.();
  }
  setImmediate(() => process.exit(0));
}

process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

if (EXIT_ON_STDIN_EOF) {
  process.stdin.on('end', () => shutdown('stdin closed'));
  process.stdin.on('close', () => shutdown('stdin closed'));
  process.stdin.on('error', () => shutdown('stdin error'));
  process.stdin.on('data', () => {}); // discard anything written to stdin
  process.stdin.resume();
}

log(`mTLS endpoint aliases at ${MTLS_ORIGIN}`);
log(`issuer ${ISSUER}, require PAR ${REQUIRE_PAR}, access token ttl ${ACCESS_TOKEN_TTL}s, device code ttl ${DEVICE_CODE_TTL}s, interval ${DEVICE_INTERVAL}s`);
process.stdout.write(`READY ${ISSUER}\n`);
