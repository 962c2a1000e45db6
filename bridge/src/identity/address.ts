/**
 * Who a per-address limit counts: one host. An IPv6 host is normally given a
 * whole /64, so counting its addresses one by one would give it 2^64 budgets.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** The address a limit counts by: IPv4 as is (also when mapped into IPv6), IPv6 by its first 64 bits. */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1];
  if (isIPv4(address) || !isIPv6(address)) return address;
  const [head, tail = ''] = address.split('::');
  const a = head === '' ? [] : head.split(':');
  const b = address.includes('::') ? (tail === '' ? [] : tail.split(':')) : [];
  const groups = [...a, ...new Array<string>(8 - a.length - b.length).fill('0'), ...b];
  return groups.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':') + '::/64';
}
