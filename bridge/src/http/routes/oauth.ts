/**
 * POST /oauth/token, as Particle's: form-encoded (or JSON), the client in
 * Basic auth or in client_id/client_secret; the password and refresh_token
 * grants. Answers {access_token, token_type: "bearer", expires_in,
 * refresh_token}; refusals in RFC 6749's shape {error, error_description}.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Route } from '../app.js';
import { ApiError } from '../errors.js';
import { field, type Fields } from '../body.js';

/** Particle's own clients, as their tools send them (particle-api-js, particle-cli, the docs' curl). */
const BUILT_IN_CLIENTS: Record<string, readonly string[]> = {
  'particle-api': ['particle-api'],
  'particle-cli': ['particle-cli', 'client_secret_here'],
  particle: ['particle'],
};

/** Particle's default token lifetime: 90 days. */
const DEFAULT_TTL = 7776000;

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function client(headers: Record<string, string | string[] | undefined>, body: Fields): string {
  let id = typeof body.client_id === 'string' ? body.client_id : '';
  let secret = typeof body.client_secret === 'string' ? body.client_secret : '';
  const auth = headers.authorization;
  if (typeof auth === 'string' && /^basic /i.test(auth)) {
    const decoded = Buffer.from(auth.slice(6).trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    id = decodeURIComponent(decoded.slice(0, colon < 0 ? decoded.length : colon));
    secret = colon < 0 ? '' : decodeURIComponent(decoded.slice(colon + 1));
  }
  const secrets = Object.prototype.hasOwnProperty.call(BUILT_IN_CLIENTS, id) ? BUILT_IN_CLIENTS[id] : null;
  if (!secrets || !secrets.some((s) => same(s, secret))) throw ApiError.oauth(401, 'invalid_client', 'Client authentication failed');
  return id;
}

function ttl(body: Fields): number | null {
  const raw = body.expires_in;
  if (raw === undefined || raw === '') return DEFAULT_TTL;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw ApiError.oauth(400, 'invalid_request', 'expires_in must be a whole number of seconds');
  return n === 0 ? null : n; // 0: never expires, as Particle
}

export const oauthRoutes: Route[] = [
  [
    'POST', '/oauth/token',
    async (req, { store }) => {
      const body = await req.body();
      const clientId = client(req.headers, body);
      const grant = field(body, 'grant_type', true);
      const lifetime = ttl(body);
      let issued;
      if (grant === 'password') {
        const user = await store.verifyPassword(field(body, 'username', true), field(body, 'password', true));
        if (!user) throw ApiError.oauth(400, 'invalid_grant', 'User credentials are invalid');
        issued = await store.issueToken({ subject: { kind: 'user', id: user.id }, clientId, scopes: [], ttlSeconds: lifetime, refresh: true });
      } else if (grant === 'refresh_token') {
        issued = await store.refreshToken(field(body, 'refresh_token', true), lifetime);
        if (!issued) throw ApiError.oauth(400, 'invalid_grant', 'The refresh token is invalid, expired or already used');
      } else {
        throw ApiError.oauth(400, 'unsupported_grant_type', 'grant_type must be password or refresh_token');
      }
      return {
        access_token: issued.token,
        token_type: 'bearer',
        expires_in: issued.expiresAt ? Math.round((issued.expiresAt.getTime() - Date.now()) / 1000) : 0,
        refresh_token: issued.refreshToken,
      };
    },
  ],
];
