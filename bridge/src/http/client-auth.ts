/** Credentials in a request's Authorization header or fields: OAuth clients' (RFC 6749 §2.3.1) and users' (Basic). */
import type { Fields } from './body.js';

/** Followed by a product's id: the client of the tokens its team issues new customers (POST /v1/products/:p/customers), which any client of that product may refresh. */
export const PRODUCT_CLIENT = 'product-';

/** Followed by a client's id: the API user a product's client acts as (its credentials create customers). */
export const CLIENT_ACTOR = 'client:';

/** The client a client actor is, or null for any other actor. */
export function clientOf(actor: { kind: string; apiUserId?: string }): string | null {
  return actor.kind === 'apiUser' && actor.apiUserId?.startsWith(CLIENT_ACTOR) ? actor.apiUserId.slice(CLIENT_ACTOR.length) : null;
}

/** The name and secret of a Basic Authorization header as sent (RFC 7617), or null without one. */
export function basicCredentials(auth: string | undefined): { name: string; secret: string } | null {
  if (typeof auth !== 'string' || !/^basic /i.test(auth)) return null;
  const decoded = Buffer.from(auth.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? { name: decoded, secret: '' } : { name: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
}

/** The client a request presents, in Basic auth or in the client_id/client_secret fields. */
export function presentedClient(headers: Record<string, string | string[] | undefined>, body: Fields): { id: string; secret: string } | null {
  let id = typeof body.client_id === 'string' ? body.client_id : '';
  let secret = typeof body.client_secret === 'string' ? body.client_secret : '';
  const basic = basicCredentials(headers.authorization as string | undefined);
  if (basic) {
    // A client's id and secret are form-encoded before Basic encoding (RFC 6749 §2.3.1); a user's password is not.
    try {
      id = decodeURIComponent(basic.name);
      secret = decodeURIComponent(basic.secret);
    } catch {
      return null;
    }
  }
  return id ? { id, secret } : null;
}
