// Token exchange (RFC 8693) for the interop server: a client trades an access token it
// holds (the subject, and optionally an actor) for a new client_credentials-style access
// token, which /test/protected accepts. See README.md, "Token exchange".
import { errors } from 'oidc-provider';

const { InvalidGrant, InvalidRequest, InvalidScope, InvalidTarget } = errors;

const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

// The audiences (logical names) and resources (URIs) this server issues exchanged tokens
// for; anything else is `invalid_target` (RFC 8693 §2.2.2).
const AUDIENCES = new Set(['orders', 'billing']);
const RESOURCES = new Set(['https://orders.example.com/', 'https://billing.example.com/']);

export const grantType = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const parameters = [
  'subject_token',
  'subject_token_type',
  'actor_token',
  'actor_token_type',
  'requested_token_type',
  'audience',
  'resource',
  'scope',
];
// Parameters RFC 8693 lets a request repeat (registerGrantType's `dupes`).
export const dupes = ['audience', 'resource'];
export const clients = ['basic-client', 'post-client'];

/** A live (found, not expired, not revoked) access or client_credentials token, or undefined. */
async function findLiveToken(provider, value) {
  if (typeof value !== 'string' || !/^[A-Za-z0-9_-]{1,512}$/.test(value)) return undefined;
  for (const Model of [provider.AccessToken, provider.ClientCredentials]) {
    // eslint-disable-next-line no-await-in-loop
    const token = await Model.find(value);
    if (token) return token.isExpired || token.consumed ? undefined : token;
  }
  return undefined;
}

function list(value) {
  if (value === undefined || value === null || value === '') return [];
  return Array.isArray(value) ? value : [value];
}

export async function handler(ctx, env) {
  const { provider, log } = env;
  const { client } = ctx.oidc;
  const params = ctx.oidc.params;

  if (!params.subject_token) throw new InvalidRequest('missing required parameter subject_token');
  if (!params.subject_token_type) throw new InvalidRequest('missing required parameter subject_token_type');
  if (params.subject_token_type !== ACCESS_TOKEN_TYPE) {
    throw new InvalidRequest('unsupported subject_token_type: this server exchanges access tokens only');
  }
  const subject = await findLiveToken(provider, params.subject_token);
  if (!subject) throw new InvalidGrant('subject_token is invalid, expired or revoked');

  let actor;
  if (params.actor_token || params.actor_token_type) {
    if (!params.actor_token) throw new InvalidRequest('actor_token_type given without actor_token');
    if (!params.actor_token_type) throw new InvalidRequest('actor_token given without actor_token_type');
    if (params.actor_token_type !== ACCESS_TOKEN_TYPE) {
      throw new InvalidRequest('unsupported actor_token_type: this server accepts access tokens only');
    }
    actor = await findLiveToken(provider, params.actor_token);
    if (!actor) throw new InvalidGrant('actor_token is invalid, expired or revoked');
  }

  if (params.requested_token_type && params.requested_token_type !== ACCESS_TOKEN_TYPE) {
    throw new InvalidRequest('unsupported requested_token_type: this server issues access tokens only');
  }

  const audiences = list(params.audience);
  const resources = list(params.resource);
  for (const audience of audiences) {
    if (!AUDIENCES.has(audience)) throw new InvalidTarget(`unknown audience ${audience}`);
  }
  for (const resource of resources) {
    if (!RESOURCES.has(resource)) throw new InvalidTarget(`unknown resource ${resource}`);
  }

  // Down-scoping only: the new token's scope is the requested one, which must be within the
  // subject's; without `scope`, the subject's.
  const held = new Set(String(subject.scope || '').split(' ').filter(Boolean));
  const requested = params.scope ? String(params.scope).split(' ').filter(Boolean) : [...held];
  const beyond = requested.filter((s) => !held.has(s));
  if (beyond.length) throw new InvalidScope(`scope beyond the subject token's: ${beyond.join(' ')}`);

  const token = new provider.ClientCredentials({
    client,
    scope: requested.join(' ') || undefined,
    extra: {
      token_exchange: {
        subject: subject.accountId || subject.clientId,
        subject_client: subject.clientId,
        actor: actor ? actor.accountId || actor.clientId : undefined,
        audience: audiences,
        resource: resources,
      },
    },
  });
  ctx.oidc.entity('ClientCredentials', token);
  const value = await token.save();
  log(`token exchange: client=${client.clientId} subject=${subject.clientId} actor=${actor ? actor.clientId : '-'} audience=${JSON.stringify(audiences)} scope=${JSON.stringify(token.scope || '')}`);

  ctx.body = {
    access_token: value,
    issued_token_type: ACCESS_TOKEN_TYPE,
    token_type: 'Bearer',
    expires_in: token.expiration,
    ...(token.scope ? { scope: token.scope } : {}),
  };
}
