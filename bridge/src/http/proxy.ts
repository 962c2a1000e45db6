/**
 * The client behind a reverse proxy. The HTTP API has no TLS of its own, so a
 * bridge reached from afar sits behind a TLS-terminating proxy, and every
 * client then arrives from the proxy's address: the per-address limits and
 * lockouts would count them all as one (one attacker locked every login out).
 * From a proxy the operator trusts (`http.trustProxy`), the client is the
 * right-most X-Forwarded-For hop that is not itself a trusted proxy; from
 * anyone else the header is ignored, since anyone can send it.
 */
import { BlockList, isIP } from 'node:net';

/** Whether an address is one of the operator's proxies. */
export type TrustedProxies = (address: string) => boolean;

/**
 * An address as a proxy may write it, plain: IPv4 mapped into IPv6 (::ffff:10.0.0.1, as dual-stack
 * sockets report it) is the IPv4 address; a port some proxies add (1.2.3.4:5678, [2001:db8::1]:443) goes.
 */
function plain(address: string): string {
  const bracketed = /^\[([0-9a-f:.]+)\](?::\d+)?$/i.exec(address);
  const v4port = /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(address);
  const a = bracketed ? bracketed[1] : v4port ? v4port[1] : address;
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  return m ? m[1] : a;
}

/** From addresses and ranges (10.0.0.1, 10.0.0.0/8, ::1, fd00::/8); throws naming the first that is neither. */
export function trustedProxies(ranges: readonly string[]): TrustedProxies {
  const list = new BlockList();
  for (const r of ranges) {
    const [address, bits, extra] = r.split('/');
    const family = isIP(address);
    const prefix = bits === undefined ? null : /^[0-9]{1,3}$/.test(bits) ? Number(bits) : NaN;
    if (family === 0 || extra !== undefined || (prefix !== null && !(prefix <= (family === 4 ? 32 : 128))))
      throw new Error(`"${r}" is not an address or a range like 10.0.0.0/8`);
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (prefix === null) list.addAddress(address, type);
    else list.addSubnet(address, prefix, type);
  }
  if (ranges.length === 0) return () => false;
  return (address) => {
    const a = plain(address);
    const family = isIP(a);
    return family !== 0 && list.check(a, family === 4 ? 'ipv4' : 'ipv6');
  };
}

/** The client's address: the peer, or, from a trusted proxy, the right-most forwarded hop that is no trusted proxy. */
export function clientAddress(peer: string, forwardedFor: string | string[] | undefined, trusted: TrustedProxies): string {
  if (!trusted(peer) || forwardedFor === undefined) return peer;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',').map((h) => plain(h.trim()));
  for (let i = hops.length - 1; i >= 0; i--) {
    // A hop that is no address was not written by a proxy we trust: stop at what is known.
    if (isIP(hops[i]) === 0) return i === hops.length - 1 ? peer : hops[i + 1];
    if (!trusted(hops[i])) return hops[i];
  }
  return hops[0] ?? peer;
}
