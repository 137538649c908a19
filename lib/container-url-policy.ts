// Where the workflow may push tokens: a dispatch's container_url is checked when the dispatch is
// created and again, on the address actually dialled, at every push (the push pins the address it
// checked, so DNS cannot rebind in between). Always refused: link-local (169.254.0.0/16, the cloud
// metadata address among them; fe80::/10), unspecified, multicast and broadcast addresses, in any
// IPv6 wrapping of an IPv4 address. CONTAINER_URL_ALLOW, when set, names the only hosts (`name`,
// `*.suffix`) and networks (CIDRs) allowed; in production plain http needs it.
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { hasQueryOrFragment } from './base-url';

/** Resolves a host name to every address it has (the DNS edge; tests inject their own). */
export type ResolveHost = (host: string) => Promise<Array<{ address: string; family: number }>>;

export const resolveWithDns: ResolveHost = (host) => lookup(host, { all: true, verbatim: true });

export interface ContainerUrlPolicy {
  /** Parsed CONTAINER_URL_ALLOW; undefined when unset (any host but the always-refused ones). */
  allow?: { hosts: Set<string>; suffixes: string[]; networks: BlockList };
  production: boolean;
  resolve: ResolveHost;
}

const REFUSED: Array<[string, BlockList]> = (
  [
    [
      'link-local',
      [
        ['169.254.0.0', 16, 'ipv4'],
        ['fe80::', 10, 'ipv6'],
      ],
    ],
    [
      'unspecified',
      [
        ['0.0.0.0', 8, 'ipv4'],
        ['::', 128, 'ipv6'],
      ],
    ],
    [
      'multicast',
      [
        ['224.0.0.0', 4, 'ipv4'],
        ['ff00::', 8, 'ipv6'],
      ],
    ],
    ['broadcast', [['255.255.255.255', 32, 'ipv4']]],
  ] as Array<[string, Array<[string, number, 'ipv4' | 'ipv6']>]>
).map(([reason, nets]) => {
  const list = new BlockList();
  for (const [net, prefix, type] of nets) list.addSubnet(net, prefix, type);
  return [reason, list];
});

const HOST_NAME = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/;

/** The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d) or NAT64 (64:ff9b::/96) IPv6 address. */
function embeddedIpv4(address: string): string | undefined {
  const m = /^(?:::ffff:|64:ff9b::)(?:(\d+\.\d+\.\d+\.\d+)|([0-9a-f]{1,4}):([0-9a-f]{1,4}))$/i.exec(address);
  if (!m) return undefined;
  if (m[1]) return m[1];
  const [hi, lo] = [parseInt(m[2], 16), parseInt(m[3], 16)];
  return [hi >> 8, hi & 255, lo >> 8, lo & 255].join('.');
}

/** Why an address is never a container, or null. */
export function refusedAddress(address: string): string | null {
  const v4 = embeddedIpv4(address);
  const [addr, type] = v4 ? [v4, 'ipv4' as const] : [address, isIP(address) === 6 ? ('ipv6' as const) : ('ipv4' as const)];
  for (const [reason, list] of REFUSED) if (list.check(addr, type)) return reason;
  return null;
}

/** Parses CONTAINER_URL_ALLOW (comma list of hosts, `*.suffix`, IP addresses and CIDRs); `problems` names each bad entry. */
export function parseContainerUrlAllow(raw: string | undefined): { allow?: ContainerUrlPolicy['allow']; problems: string[] } {
  const entries = (raw ?? '')
    .split(',')
    .map((e) => e.trim().toLowerCase())
    .filter(Boolean);
  if (entries.length === 0) return { problems: [] };
  const allow = { hosts: new Set<string>(), suffixes: [] as string[], networks: new BlockList() };
  const problems: string[] = [];
  for (const entry of entries) {
    const [net, prefix, extra] = entry.split('/');
    const family = isIP(net);
    if (family !== 0 && extra === undefined) {
      const bits = prefix === undefined ? (family === 4 ? 32 : 128) : /^\d{1,3}$/.test(prefix) ? Number(prefix) : -1;
      if (bits >= 0 && bits <= (family === 4 ? 32 : 128)) {
        allow.networks.addSubnet(net, bits, family === 4 ? 'ipv4' : 'ipv6');
        continue;
      }
    } else if (entry.startsWith('*.') && HOST_NAME.test(entry.slice(2))) {
      allow.suffixes.push(entry.slice(1));
      continue;
    } else if (HOST_NAME.test(entry)) {
      allow.hosts.add(entry);
      continue;
    }
    problems.push(`CONTAINER_URL_ALLOW entry ${entry} is neither a host name, a *.suffix nor an IP address or CIDR`);
  }
  return { allow, problems };
}

function allowedAddress(address: string, allow: NonNullable<ContainerUrlPolicy['allow']>): boolean {
  const v4 = embeddedIpv4(address);
  return v4 ? allow.networks.check(v4, 'ipv4') : allow.networks.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
}

/** Whether CONTAINER_URL_ALLOW names this host name (exactly, or under a `*.suffix`). */
function allowedName(host: string, allow: NonNullable<ContainerUrlPolicy['allow']>): boolean {
  return allow.hosts.has(host) || allow.suffixes.some((s) => host.endsWith(s));
}

/**
 * The addresses a container host may be reached at, every one of them checked: always-refused
 * ranges, then CONTAINER_URL_ALLOW (by name, or every address in its networks). Throws
 * ContainerAddressRefused with the reason.
 */
export async function vetContainerHost(host: string, policy: ContainerUrlPolicy): Promise<{ addresses: string[]; allowListed: boolean }> {
  const literal = isIP(host) !== 0;
  let addresses: string[];
  if (literal) addresses = [host];
  else {
    addresses = await policy.resolve(host).then(
      (found) => found.map((a) => a.address),
      () => [],
    );
    if (addresses.length === 0) throw new ContainerAddressRefused(`host ${host} does not resolve`);
  }
  for (const address of addresses) {
    const reason = refusedAddress(address);
    if (reason) throw new ContainerAddressRefused(`host ${host}${literal ? '' : ` resolves to ${address}, which`} is ${reason}`);
  }
  const allow = policy.allow;
  const allowListed = !!allow && ((!literal && allowedName(host, allow)) || addresses.every((a) => allowedAddress(a, allow)));
  if (allow && !allowListed) throw new ContainerAddressRefused(`host ${host} is not allowed by CONTAINER_URL_ALLOW`);
  return { addresses, allowListed };
}

/** A container address the policy refuses. */
export class ContainerAddressRefused extends Error {
  readonly code = 'ERR_CONTAINER_ADDRESS_REFUSED';
  constructor(message: string) {
    super(message);
    this.name = 'ContainerAddressRefused';
  }
}

/** The host of a URL as the resolver and the checks take it (IPv6 without brackets). */
export function urlHost(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}

/** Why `raw` cannot be a dispatch's container_url under `policy`, or null. */
export async function containerUrlProblem(raw: string, policy: ContainerUrlPolicy): Promise<string | null> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'must be a URL like http://agent-123:8787';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must be an http(s) URL';
  if (url.username || url.password) return 'must not contain credentials';
  if (hasQueryOrFragment(raw, url)) return 'must not contain a query or fragment';
  let vetted;
  try {
    vetted = await vetContainerHost(urlHost(url), policy);
  } catch (err) {
    if (err instanceof ContainerAddressRefused) return err.message;
    throw err;
  }
  if (policy.production && url.protocol === 'http:' && !vetted.allowListed) {
    return 'plain http:// is allowed in production only to hosts CONTAINER_URL_ALLOW names (the push carries a token)';
  }
  return null;
}
