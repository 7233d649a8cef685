/**
 * Client IP anonymization, applied before an IP leaves the collector (unless configured off): the
 * last octet of an IPv4 address and the last 80 bits of an IPv6 address are zeroed, the rule Google
 * Analytics and Matomo use; city-level geo is looked up on the full address before this.
 */
import { isIP } from 'node:net';

export function anonymizeIp(ip: string): string | undefined {
  const v = isIP(ip);
  if (v === 4) return ip.replace(/\.\d+$/, '.0');
  if (v !== 6) return undefined;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped?.[1]) return `::ffff:${anonymizeIp(mapped[1])}`;
  return `${expandIpv6(ip).slice(0, 3).join(':')}::`;
}

/** Eight 16-bit groups, without leading zeros. `ip` is a valid IPv6 address. */
function expandIpv6(ip: string): string[] {
  const [head = '', tail] = ip.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = Array.from({ length: 8 - h.length - t.length }, () => '0');
  return [...h, ...zeros, ...t].map((g) => g.replace(/^0+(?=.)/, '').toLowerCase());
}
