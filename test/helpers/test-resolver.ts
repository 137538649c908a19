// The DNS edge for tests: container hosts resolve without a query ever leaving this machine.
// localhost and the reserved test names (`*.test`, example.com and below) are loopback; any other
// name does not resolve, as if it did not exist.
import { isIP } from 'node:net';
import type { ResolveHost } from '../../lib/container-url-policy';

export const loopbackResolver: ResolveHost = async (host) => {
  const name = host.toLowerCase();
  if (isIP(name)) return [{ address: name, family: isIP(name) }];
  if (name === 'localhost' || name.endsWith('.test') || name === 'example.com' || name.endsWith('.example.com')) {
    return [{ address: '127.0.0.1', family: 4 }];
  }
  throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
};
