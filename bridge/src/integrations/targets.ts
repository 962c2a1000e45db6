/**
 * Where webhooks may go. A webhook's URL is written by a product's team, and
 * its answer comes back to them as hook-response events: a URL on the
 * bridge's own machine or network would let them read what only the bridge
 * can reach (its own ports, a cloud's metadata service at 169.254.169.254,
 * the LAN). Addresses in the special-purpose ranges below are refused unless
 * the bridge's operator allows a range (webhooks.allowTargets), checked on
 * every address a host name resolves to, when connecting (a name that
 * resolves elsewhere later is checked again).
 */
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { lookup } from 'node:dns';
import { templateShape } from './template.js';

/** IANA special-purpose ranges: this host, private, shared (CGNAT), loopback, link-local, benchmarking, multicast, reserved. */
const SPECIAL: readonly [string, number, 'ipv4' | 'ipv6'][] = [
  ['0.0.0.0', 8, 'ipv4'], ['10.0.0.0', 8, 'ipv4'], ['100.64.0.0', 10, 'ipv4'], ['127.0.0.0', 8, 'ipv4'],
  ['169.254.0.0', 16, 'ipv4'], ['172.16.0.0', 12, 'ipv4'], ['192.0.0.0', 24, 'ipv4'], ['192.168.0.0', 16, 'ipv4'],
  ['198.18.0.0', 15, 'ipv4'], ['224.0.0.0', 4, 'ipv4'], ['240.0.0.0', 4, 'ipv4'],
  // IPv4-mapped addresses (::ffff:a.b.c.d) are checked against the IPv4 ranges by BlockList itself.
  ['::', 128, 'ipv6'], ['::1', 128, 'ipv6'], ['fc00::', 7, 'ipv6'], ['fe80::', 10, 'ipv6'], ['ff00::', 8, 'ipv6'],
  // Forms that carry an IPv4 address a gateway turns back into it (a local one, for all the list above knows):
  // IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::/96 and the local-use 64:ff9b:1::/48), 6to4 (2002::/16),
  // Teredo (2001::/32); and discard-only (100::/64) and documentation (2001:db8::/32).
  ['::', 96, 'ipv6'], ['64:ff9b::', 96, 'ipv6'], ['64:ff9b:1::', 48, 'ipv6'], ['2002::', 16, 'ipv6'], ['2001::', 32, 'ipv6'],
  ['100::', 64, 'ipv6'], ['2001:db8::', 32, 'ipv6'],
];

/** A webhook target the bridge will not connect to; its message says why and what would allow it. */
export class TargetRefused extends Error {}

export interface TargetPolicy {
  /** Why `address` (an IP) may not be a webhook's target, or null when it may. */
  refusal(address: string): string | null;
  /**
   * Why a URL (or a URL template) may not be a target, when its host is a
   * literal address; null for a name or a templated host (checked as it
   * resolves, at delivery).
   */
  urlRefusal(url: string): string | null;
  /** The same for a parsed URL's hostname (a literal IPv6 address in brackets, as URL gives it). */
  hostRefusal(hostname: string): string | null;
  /** dns.lookup, failing on a refused address (for http.request's `lookup`). */
  lookup: LookupFunction;
}

/** One range: "a.b.c.d/n", "x:y::/n", or a single address. Throws on anything else. */
function addRange(list: BlockList, range: string): void {
  const [address, bits, extra] = range.trim().split('/');
  const family = isIP(address);
  const prefix = bits === undefined ? (family === 6 ? 128 : 32) : Number(bits);
  if (!family || extra !== undefined || (bits !== undefined && !/^\d{1,3}$/.test(bits)) || prefix > (family === 6 ? 128 : 32)) {
    throw new Error('webhooks.allowTargets: "' + range + '" is not an address or a range like 10.0.0.0/8');
  }
  list.addSubnet(address, prefix, family === 6 ? 'ipv6' : 'ipv4');
}

export function targetPolicy(allowTargets: readonly string[]): TargetPolicy {
  const special = new BlockList();
  for (const [address, prefix, type] of SPECIAL) special.addSubnet(address, prefix, type);
  const allowed = new BlockList();
  for (const r of allowTargets) addRange(allowed, r);
  /** Why `address` is refused; `hostname`, when a name resolved to it, is what the refusal names (not the address: a team would map the bridge's internal names). */
  const refusal = (address: string, hostname?: string): string | null => {
    const type = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (!special.check(address, type) || allowed.check(address, type)) return null;
    return 'webhook target ' + (hostname === undefined ? address + ' is' : hostname + ' resolves to') + ' a local, private or reserved address; the bridge\'s operator can allow its range (--webhook-allow, FLOTILLA_WEBHOOK_ALLOW; the option webhooks.allowTargets)';
  };
  const guarded = ((hostname: string, options: object, callback: (err: Error | null, address: unknown, family?: number) => void) => {
    lookup(hostname, options as never, (err, address, family) => {
      if (err) return callback(err, address, family);
      const all = Array.isArray(address) ? (address as { address: string }[]) : [{ address: address as string }];
      for (const a of all) {
        const why = refusal(a.address, hostname);
        if (why) return callback(new TargetRefused(why), address, family);
      }
      callback(null, address, family);
    });
  }) as unknown as LookupFunction;
  const hostRefusal = (hostname: string): string | null => {
    const host = hostname.replace(/^\[(.*)\]$/, '$1');
    return isIP(host) ? refusal(host) : null;
  };
  const urlRefusal = (url: string): string | null => {
    let hostname: string;
    try {
      hostname = new URL(templateShape(url)).hostname;
    } catch {
      return null; // no URL: the request fails to render, and says so
    }
    return hostRefusal(hostname);
  };
  return { refusal, urlRefusal, hostRefusal, lookup: guarded };
}
