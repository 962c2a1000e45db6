/**
 * CONNECT over TLS with a client certificate. Node's TLS has already checked
 * the certificate against every product CA (the listener requests one but
 * does not demand it, so devices that use a secret over TLS still connect);
 * this decides what it means:
 *
 *   no certificate                      → null: the secret (or token) decides, as over TCP
 *   presented but not verified          → refused, 4 (unknown CA, expired, not yet valid, bad signature...)
 *   revoked (revoked.txt)               → refused, 4
 *   CN is not the client id             → refused, 4
 *   device unknown                      → refused, 5
 *   device's product ≠ issuing CA's     → refused, 5
 *   otherwise                           → the device's session, as authenticate() builds it
 */
import { TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import { authenticate, BAD_CREDENTIALS, NOT_AUTHORIZED, type AuthResult, type Will } from '../mqtt/authenticate.js';
import type { BrokerContext } from '../mqtt/context.js';
import type { BrokerStore } from '../mqtt/deps.js';
import { fingerprintOf, type CertificateAuthority } from './ca.js';

/** What a connection's client certificate says, before the client id is known. */
export type PeerCertificate =
  | { status: 'none' }
  | { status: 'refused'; reason: string; fingerprint?: string }
  | { status: 'valid'; deviceId: string; productId: string; fingerprint: string };

/**
 * The TLS socket under a connection: the socket itself (mqtts), or the one a
 * WebSocket stream came through (wss, set by listeners.ts as `tlsSocket`).
 */
export function tlsSocketOf(socket: unknown): TLSSocket | null {
  if (socket instanceof TLSSocket) return socket;
  const under = (socket as { tlsSocket?: unknown } | null)?.tlsSocket;
  return under instanceof TLSSocket ? under : null;
}

export function peerCertificate(ca: CertificateAuthority, socket: unknown): PeerCertificate {
  const tls = tlsSocketOf(socket);
  const cert = tls?.getPeerX509Certificate();
  if (!tls || !cert) return { status: 'none' };
  const fingerprint = fingerprintOf(cert);
  if (!tls.authorized) return { status: 'refused', reason: 'client certificate not accepted: ' + String(tls.authorizationError ?? 'not verified'), fingerprint };
  if (ca.isRevoked(fingerprint)) return { status: 'refused', reason: 'client certificate revoked', fingerprint };
  const productId = ca.issuingProduct(cert);
  if (!productId) return { status: 'refused', reason: 'client certificate not issued by a product CA', fingerprint };
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1] ?? '';
  return { status: 'valid', deviceId: cn, productId, fingerprint };
}

/**
 * The broker's certificate hook (BrokerOptions.certificateAuth): null when no
 * certificate was presented, else the verdict on it.
 */
export function certificateAuth(ca: CertificateAuthority) {
  return (ctx: BrokerContext, socket: Socket, clientId: string, username: string | undefined, will: Will | null): Promise<AuthResult> | null => {
    const peer = peerCertificate(ca, socket);
    if (peer.status === 'none') return null;
    if (peer.status === 'refused') return Promise.resolve({ ok: false, code: BAD_CREDENTIALS, reason: peer.reason });
    if (peer.deviceId !== clientId) return Promise.resolve({ ok: false, code: BAD_CREDENTIALS, reason: `client certificate is for "${peer.deviceId}", not the client id` });
    return authenticateCertified(ctx, peer, clientId, username, will);
  };
}

/**
 * The certificate stands in for the device secret; everything else (username,
 * will, the device's product, the session's shape) stays authenticate()'s,
 * so the two ways in cannot drift apart. authenticate() may later take the
 * certified device id itself; until then, a store view whose secret check
 * answers yes for exactly this device.
 */
async function authenticateCertified(
  ctx: BrokerContext, peer: { deviceId: string; productId: string }, clientId: string, username: string | undefined, will: Will | null,
): Promise<AuthResult> {
  const store = new Proxy(ctx.store, {
    get(target, key) {
      if (key === 'verifyDeviceSecret') return async (id: string) => id === peer.deviceId;
      const v = Reflect.get(target, key, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as BrokerStore;
  const r = await authenticate({ ...ctx, store }, clientId, username ?? clientId, Buffer.from('client-certificate'), will);
  if (!r.ok) return r;
  if (r.session.kind !== 'device') return { ok: false, code: NOT_AUTHORIZED, reason: 'a client certificate identifies a device' };
  if (r.session.ref.product.productId !== peer.productId)
    return { ok: false, code: NOT_AUTHORIZED, reason: `client certificate from product ${peer.productId}'s CA, device is in product ${r.session.ref.product.productId}` };
  return r;
}
