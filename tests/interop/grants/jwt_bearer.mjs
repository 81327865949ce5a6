// The JWT bearer grant (RFC 7523 §2.1) for the interop server.
//
// The assertion must be signed by a key registered for its `iss` below, with `aud` = the
// token endpoint URL or the issuer, `exp` present and not past, `iat`, a `sub` known for
// that issuer, and a `jti` never seen before (replays are refused). The token issued is a
// ClientCredentials access token of the authenticated client (so /test/protected accepts
// it), with the requested known scopes: from the `scope` form field, or else (Google style)
// from the assertion's `scope` claim.

import { readFileSync } from 'node:fs';
import { createPublicKey } from 'node:crypto';
import * as jose from 'jose';
import { errors } from 'oidc-provider';

export const grantType = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
export const parameters = new Set(['assertion', 'scope']);

const SERVICE_ACCOUNT = 'robot@interop-project.iam.gserviceaccount.com';
export const clients = ['jwt-bearer-client', SERVICE_ACCOUNT];

// Public half of service-account.key.pem (RSA 2048, RS256), as a Google service account's
// `private_key_id` would name it.
const serviceAccountJwk = {
  ...createPublicKey(readFileSync(new URL('../service-account.key.pem', import.meta.url))).export({ format: 'jwk' }),
  kid: 'sa-key-1',
  alg: 'RS256',
  use: 'sig',
};

// Trusted issuers: their keys and the subjects they may assert. Built on first use (the
// pkjwt keys come from the server's environment).
let issuers;
function trustedIssuers(env) {
  issuers ??= new Map([
    // Signs with any pkjwt-client key (ES256, RS256/PS256, EdDSA).
    ['jwt-bearer-issuer', { keys: jose.createLocalJWKSet(env.pkjwtJwks), subjects: ['jwt-bearer-issuer', 'test-user'] }],
    // Google style: iss = sub = the service account (or a delegated user).
    [SERVICE_ACCOUNT, { keys: jose.createLocalJWKSet({ keys: [serviceAccountJwk] }), subjects: [SERVICE_ACCOUNT, 'test-user'] }],
  ]);
  return issuers;
}

// jti values seen, with their exp (seconds), so that a replay is refused.
const seen = new Map();

export async function handler(ctx, env) {
  const { assertion, scope } = ctx.oidc.params;
  if (!assertion) throw new errors.InvalidRequest('missing required parameter: assertion');

  let unverified;
  try {
    unverified = jose.decodeJwt(assertion);
  } catch {
    throw new errors.InvalidGrant('the assertion is not a JWT');
  }
  const issuer = trustedIssuers(env).get(unverified.iss);
  if (!issuer) throw new errors.InvalidGrant('unknown assertion issuer');

  let payload;
  try {
    ({ payload } = await jose.jwtVerify(assertion, issuer.keys, {
      issuer: unverified.iss,
      audience: [env.tokenUrl, env.issuer],
      requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti'],
      clockTolerance: 0,
    }));
  } catch (err) {
    env.log(`jwt-bearer: assertion refused: ${err.code || err.name}: ${err.message}`);
    throw new errors.InvalidGrant(`assertion refused (${err.code || err.name})`);
  }
  if (!issuer.subjects.includes(payload.sub)) throw new errors.InvalidGrant('unknown assertion subject');

  const now = Math.floor(Date.now() / 1000);
  for (const [key, exp] of seen) if (exp < now) seen.delete(key);
  const jtiKey = `${payload.iss} ${payload.jti}`;
  if (seen.has(jtiKey)) throw new errors.InvalidGrant('assertion jti already used');
  seen.set(jtiKey, payload.exp);

  const requested = String(scope || payload.scope || '').split(' ').filter((s) => env.scopes.includes(s));
  const token = new env.provider.ClientCredentials({
    client: ctx.oidc.client,
    scope: [...new Set(requested)].join(' ') || undefined,
  });
  ctx.oidc.entity('ClientCredentials', token);
  const value = await token.save();
  env.log(`jwt-bearer: token for iss=${payload.iss} sub=${payload.sub} client=${ctx.oidc.client.clientId}`);
  ctx.body = {
    access_token: value,
    expires_in: token.expiration,
    token_type: token.tokenType,
    scope: token.scope || undefined,
    // Echoed for the tests: what the server verified.
    assertion_sub: payload.sub,
  };
}
