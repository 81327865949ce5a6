// The resource owner password credentials grant (RFC 6749 §4.3) for the interop server: the
// fixed user `test-user` with the password PASSWORD gets a user-bound access token (which
// /test/protected accepts), and a refresh token when it asks for `offline_access`. See
// README.md, "Password grant".
import { errors } from 'oidc-provider';

const { InvalidGrant, InvalidRequest } = errors;

/** The test user's password (the user is env.accountId, `test-user`). */
export const PASSWORD = 'correct horse battery staple';

export const grantType = 'password';
export const parameters = ['username', 'password', 'scope'];
export const clients = ['basic-client', 'post-client', 'public-client'];

export async function handler(ctx, env) {
  const { provider, log, accountId, scopes: known } = env;
  const { client } = ctx.oidc;
  const { username, password, scope } = ctx.oidc.params;

  if (!username) throw new InvalidRequest('missing required parameter username');
  if (!password) throw new InvalidRequest('missing required parameter password');
  if (username !== accountId || password !== PASSWORD) {
    log(`password grant refused: client=${client.clientId} username=${JSON.stringify(username)}`);
    throw new InvalidGrant('invalid resource owner credentials');
  }

  const granted = [...new Set(String(scope || '').split(' ').filter((s) => known.includes(s)))];
  const grant = new provider.Grant({ accountId, clientId: client.clientId });
  if (granted.length) grant.addOIDCScope(granted.join(' '));
  const grantId = await grant.save();

  const at = new provider.AccessToken({
    accountId,
    client,
    grantId,
    gty: grantType,
    expiresWithSession: false,
    scope: granted.join(' ') || undefined,
  });
  ctx.oidc.entity('AccessToken', at);
  const accessToken = await at.save();

  let refreshToken;
  if (granted.includes('offline_access') && client.grantTypeAllowed('refresh_token')) {
    const rt = new provider.RefreshToken({
      accountId,
      client,
      grantId,
      gty: grantType,
      expiresWithSession: false,
      rotations: 0,
      scope: granted.join(' '),
    });
    ctx.oidc.entity('RefreshToken', rt);
    refreshToken = await rt.save();
  }
  log(`password grant: client=${client.clientId} user=${accountId} scope=${JSON.stringify(granted.join(' '))} refresh_token=${Boolean(refreshToken)}`);

  ctx.body = {
    access_token: accessToken,
    token_type: 'Bearer',
    expires_in: at.expiration,
    ...(at.scope ? { scope: at.scope } : {}),
    ...(refreshToken ? { refresh_token: refreshToken } : {}),
  };
}
