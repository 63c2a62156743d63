// Which network addresses image URLs may reach. Only globally routable unicast addresses are allowed
// unless private URLs are explicitly enabled: no loopback, RFC 1918, link-local (incl. cloud metadata
// 169.254.169.254), CGNAT, unspecified, multicast, reserved, unique-local, or IPv4-mapped/translated
// forms of those. ipaddr.js classifies; IPv4-mapped IPv6 is unwrapped first.

import ipaddr from 'ipaddr.js';

export function isForbiddenAddress(address: string): boolean {
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    addr = ipaddr.process(address.replace(/^\[|\]$/g, '').replace(/%.*$/, ''));
  } catch {
    return true; // not an address we understand: refuse
  }
  if (addr.kind() === 'ipv6') {
    const v6 = addr as ipaddr.IPv6;
    // NAT64 / 6to4 / Teredo embed IPv4 addresses: judge them by the embedded one where possible.
    const range = v6.range();
    if (range === 'rfc6052' || range === 'rfc6145' || range === '6to4' || range === 'teredo') return true;
    return range !== 'unicast';
  }
  return addr.range() !== 'unicast';
}
