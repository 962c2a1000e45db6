/**
 * POST /oauth/token, as Particle's: form-encoded (or JSON), the client in
 * Basic auth or in client_id/client_secret; the password and refresh_token
 * grants, client credentials for a product's server acting for a customer,
 * and the authorization code (with PKCE) of a product's web client. A
 * product's client gets only the grants of the product's customer sign-in
 * mode (customers/modes.ts).
 * Answers {access_token, token_type: "bearer", expires_in,
 * refresh_token}; refusals in RFC 6749's shape {error, error_description}.
 */
import { timingSafeEqual } from 'node:crypto';
import { OAUTH_TOKEN, route, type Route } from '../app.js';
import { guard } from '../access.js';
import { MAX_TOKEN_TTL_SECONDS, type Store } from '../../store/store.js';
import { ApiError } from '../errors.js';
import { field, type Fields } from '../body.js';
import { presentedClient, PRODUCT_CLIENT } from '../client-auth.js';
import { customerAuthMode, stepRefusal, type SigninStep } from '../../customers/modes.js';
import { verifierMatches } from '../../customers/pkce.js';

/** Particle's own clients, as their tools send them (particle-api-js, particle-cli, the docs' curl). */
const BUILT_IN_CLIENTS: Record<string, readonly string[]> = {
  'particle-api': ['particle-api'],
  'particle-cli': ['particle-cli', 'client_secret_here'],
  particle: ['particle'],
  // particle-cli 3.x (settings.js clientId 'CLI2', api-client.js secret 'client_secret_here').
  CLI2: ['client_secret_here'],
  // particle-cli's `particle token create` (cmd/token.js clientName 'user', the same secret).
  user: ['client_secret_here'],
};

/** Particle's default token lifetime: 90 days. */
const DEFAULT_TTL = 7776000;

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Particle's built-in clients, or an OAuth client of a user or product (then its product, if any). */
async function client(headers: Record<string, string | string[] | undefined>, body: Fields, store: Store): Promise<{ id: string; productId: number | null; ownerUserId: string | null; type: 'installed' | 'web' }> {
  const c = presentedClient(headers, body);
  if (c && Object.prototype.hasOwnProperty.call(BUILT_IN_CLIENTS, c.id)) {
    // Particle's own clients are in every copy of its tools: installed apps.
    if (BUILT_IN_CLIENTS[c.id].some((s) => same(s, c.secret))) return { id: c.id, productId: null, ownerUserId: null, type: 'installed' };
  } else if (c) {
    const found = await store.verifyClient(c.id, c.secret);
    if (found) return { id: found.id, productId: found.productId, ownerUserId: found.ownerUserId, type: found.type };
  }
  throw ApiError.oauth(401, 'invalid_client', 'Client authentication failed');
}

/** Refuses a grant the client's product does not sign its customers in with (OAuth's unauthorized_client). */
async function mayUse(store: Store, productId: number, step: SigninStep): Promise<void> {
  const product = await store.getProduct(productId);
  const why = product ? stepRefusal(customerAuthMode(product.settings), step) : 'No such product';
  if (why) throw ApiError.oauth(400, 'unauthorized_client', why);
}

function ttl(body: Fields): number | null {
  const raw = body.expires_in;
  if (raw === undefined || raw === '') return DEFAULT_TTL;
  // A number, or digits as a form sends it: not null, true or "1e3", which Number() would take as 0, 1 and 1000.
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > MAX_TOKEN_TTL_SECONDS)
    throw ApiError.oauth(400, 'invalid_request', `expires_in must be a whole number of seconds from 0 (never expires) to ${MAX_TOKEN_TTL_SECONDS}`);
  return n === 0 ? null : n; // 0: never expires, as Particle
}

/** `customer=<username>`: the scope a product's server asks for a customer token with (two-legged authentication). */
function customerScope(body: Fields): string | null {
  const scope = typeof body.scope === 'string' ? body.scope : '';
  const m = /^customer=(.+)$/.exec(scope.trim());
  return m ? m[1] : null;
}

export const oauthRoutes: Route[] = [
  route('POST', OAUTH_TOKEN, guard.public('the token endpoint: the client and the grant authenticate'), async (req, { store, fleet }) => {
    const body = await req.body();
    const c = await client(req.headers, body, store);
    const grant = field(body, 'grant_type', true);
    const lifetime = ttl(body);
    let issued;
    if (grant === 'password') {
      const username = field(body, 'username', true);
      const password = field(body, 'password', true);
      // A product's client logs in that product's customers (simple authentication); any other client, users.
      if (c.productId !== null) {
        await mayUse(store, c.productId, 'password_grant');
        const customer = await store.verifyCustomerPassword(c.productId, username, password);
        if (!customer) throw ApiError.oauth(400, 'invalid_grant', 'User credentials are invalid');
        issued = await store.issueToken({ subject: { kind: 'customer', id: customer.id }, clientId: c.id, scopes: [], ttlSeconds: lifetime, refresh: true });
      } else {
        const user = await store.verifyPassword(username, password);
        if (!user) throw ApiError.oauth(400, 'invalid_grant', 'User credentials are invalid');
        issued = await store.issueToken({ subject: { kind: 'user', id: user.id }, clientId: c.id, scopes: [], ttlSeconds: lifetime, refresh: true });
      }
    } else if (grant === 'refresh_token') {
      // Only by the client it was issued to (a customer the product's team made: any client of that product).
      const clients = c.productId === null ? [c.id] : [c.id, PRODUCT_CLIENT + c.productId];
      // A two-legged product's customer tokens are its server's (a web client), also when it chose that mode after an app got some.
      // Only simple authentication gives an app customer tokens (the authorization code flow is a web client's).
      if (c.productId !== null && c.type !== 'web') await mayUse(store, c.productId, 'password_grant');
      issued = await store.refreshToken(field(body, 'refresh_token', true), lifetime, clients);
      if (!issued) throw ApiError.oauth(400, 'invalid_grant', 'The refresh token is invalid, expired, already used, or was issued to another client');
    } else if (grant === 'client_credentials' && c.productId === null && c.ownerUserId !== null && customerScope(body) === null) {
      // particle-api-js loginAsClientOwner: a user's own client speaks for its owner, as a password would (RFC 6749 §4.4: no
      // refresh token). Only a web client, a server that keeps its secret: an installed app's is in every copy of the app.
      if (c.type !== 'web') throw ApiError.oauth(400, 'unauthorized_client', "A token for the client's owner is for a web client (a server that keeps its secret), not an installed app's");
      // A long-lived token is the password's to give: a leaked client secret mints none past the default 90 days.
      if (lifetime === null || lifetime > DEFAULT_TTL)
        throw ApiError.oauth(400, 'invalid_request', `expires_in for a client's owner is at most ${DEFAULT_TTL} seconds (90 days); longer, or never expiring, is for the password grant`);
      issued = await store.issueToken({ subject: { kind: 'user', id: c.ownerUserId }, clientId: c.id, scopes: [], ttlSeconds: lifetime });
    } else if (grant === 'client_credentials') {
      // Two-legged authentication: a product's server gets a token for one of its customers.
      const username = customerScope(body);
      if (c.productId === null || username === null)
        throw ApiError.oauth(400, 'invalid_scope', 'client_credentials needs a product client and scope=customer=<username>');
      // The product's server's grant: an installed app's credentials are in every copy of the app, so they would speak for every customer.
      if (c.type !== 'web') throw ApiError.oauth(400, 'unauthorized_client', "A customer token by client credentials is for the product's server: use a web client, not an installed app's");
      await mayUse(store, c.productId, 'customer_token');
      const customer = await store.findCustomer(c.productId, username);
      if (!customer) throw ApiError.oauth(400, 'invalid_grant', 'No such customer of this product');
      issued = await store.issueToken({ subject: { kind: 'customer', id: customer.id }, clientId: c.id, scopes: ['customer=' + customer.username], ttlSeconds: lifetime, refresh: true });
    } else if (grant === 'authorization_code') {
      // A code from /oauth/authorize (authorize.ts), spent on the first try whatever comes of it.
      const code = field(body, 'code', true);
      const redirectUri = field(body, 'redirect_uri', true);
      if (c.productId === null) throw ApiError.oauth(400, 'unauthorized_client', 'The authorization code flow is for a product\'s web client');
      const r = await store.redeemAuthorizationCode(code, c.id);
      if (!r) throw ApiError.oauth(400, 'invalid_grant', 'The authorization code is not valid');
      if (r.outcome === 'otherClient') throw ApiError.oauth(400, 'invalid_grant', 'The authorization code was issued to another client');
      if (r.outcome === 'used') {
        fleet.cutTokenHashes(r.revoked);
        throw ApiError.oauth(400, 'invalid_grant', "The authorization code was used already; the customer's tokens from this client are revoked");
      }
      if (r.code.expiresAt.getTime() <= Date.now()) throw ApiError.oauth(400, 'invalid_grant', 'The authorization code has expired');
      if (r.code.redirectUri !== redirectUri) throw ApiError.oauth(400, 'invalid_grant', 'redirect_uri is not the one of the authorization request');
      if (!verifierMatches(body.code_verifier, r.code.codeChallenge)) throw ApiError.oauth(400, 'invalid_grant', 'code_verifier does not match the code_challenge (PKCE)');
      await mayUse(store, c.productId, 'authorization_code');
      issued = await store.issueToken({ subject: { kind: 'customer', id: r.code.customerId }, clientId: c.id, scopes: [], ttlSeconds: lifetime, refresh: true });
    } else {
      throw ApiError.oauth(400, 'unsupported_grant_type', 'grant_type must be password, refresh_token, client_credentials or authorization_code');
    }
    return {
      access_token: issued.token,
      token_type: 'bearer',
      expires_in: issued.expiresAt ? Math.round((issued.expiresAt.getTime() - Date.now()) / 1000) : 0,
      ...(issued.refreshToken ? { refresh_token: issued.refreshToken } : {}),
    };
  }),
];
