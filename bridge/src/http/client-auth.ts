/** OAuth client credentials as a request presents them (RFC 6749 §2.3.1). */
import type { Fields } from './body.js';

/** The client a request presents, in Basic auth or in the client_id/client_secret fields. */
export function presentedClient(headers: Record<string, string | string[] | undefined>, body: Fields): { id: string; secret: string } | null {
  let id = typeof body.client_id === 'string' ? body.client_id : '';
  let secret = typeof body.client_secret === 'string' ? body.client_secret : '';
  const auth = headers.authorization;
  if (typeof auth === 'string' && /^basic /i.test(auth)) {
    const decoded = Buffer.from(auth.slice(6).trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    try {
      id = decodeURIComponent(decoded.slice(0, colon < 0 ? decoded.length : colon));
      secret = colon < 0 ? '' : decodeURIComponent(decoded.slice(colon + 1));
    } catch {
      return null;
    }
  }
  return id ? { id, secret } : null;
}
