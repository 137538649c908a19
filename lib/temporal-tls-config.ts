// TLS to the Temporal frontend from TEMPORAL_TLS, TEMPORAL_TLS_CA, TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY,
// TEMPORAL_TLS_SERVER_NAME and TEMPORAL_API_KEY, for lib/config.ts (which names every problem at once).
import { createPrivateKey } from 'node:crypto';
import { readCertificate, readPrivateKey } from './pem';

type TlsVars = Partial<
  Record<'TEMPORAL_TLS_CA' | 'TEMPORAL_TLS_CERT' | 'TEMPORAL_TLS_KEY' | 'TEMPORAL_TLS_SERVER_NAME' | 'TEMPORAL_API_KEY', string>
> & { TEMPORAL_TLS?: 'true' | 'false' };

/** PEM texts and the server name to verify, or false for a plaintext connection. */
export type TemporalTls = false | { ca?: string; cert?: string; key?: string; serverName?: string };

/** TEMPORAL_TLS_*: any of them (or the API key, as Temporal Cloud needs) turns TLS on; a client certificate needs its key. */
export function temporalTls(e: TlsVars, problems: string[]): TemporalTls {
  const named = (
    ['TEMPORAL_TLS_CA', 'TEMPORAL_TLS_CERT', 'TEMPORAL_TLS_KEY', 'TEMPORAL_TLS_SERVER_NAME', 'TEMPORAL_API_KEY'] as const
  ).filter((v) => e[v] !== undefined);
  if (e.TEMPORAL_TLS === 'false') {
    if (named.length) problems.push(`TEMPORAL_TLS is false but ${named.join(', ')} ${named.length > 1 ? 'need' : 'needs'} TLS`);
    return false;
  }
  if (e.TEMPORAL_TLS !== 'true' && named.length === 0) return false;
  const tls: Exclude<TemporalTls, false> = { serverName: e.TEMPORAL_TLS_SERVER_NAME };
  const read = (name: 'TEMPORAL_TLS_CA' | 'TEMPORAL_TLS_CERT', value: string | undefined) => {
    if (value === undefined) return undefined;
    try {
      return readCertificate(value);
    } catch (err) {
      problems.push(`${name} ${err instanceof Error && err.message.startsWith('is ') ? err.message : 'is not a valid PEM certificate'}`);
      return undefined;
    }
  };
  tls.ca = read('TEMPORAL_TLS_CA', e.TEMPORAL_TLS_CA)?.pem;
  const cert = read('TEMPORAL_TLS_CERT', e.TEMPORAL_TLS_CERT);
  if (e.TEMPORAL_TLS_KEY !== undefined) {
    try {
      tls.key = readPrivateKey(e.TEMPORAL_TLS_KEY);
    } catch (err) {
      problems.push(
        `TEMPORAL_TLS_KEY ${err instanceof Error && err.message.startsWith('is ') ? err.message : 'is not a valid PEM private key'}`,
      );
    }
  }
  if ((e.TEMPORAL_TLS_CERT === undefined) !== (e.TEMPORAL_TLS_KEY === undefined))
    problems.push('TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together (the client certificate and its private key, for mTLS)');
  if (cert && tls.key && !cert.x509.checkPrivateKey(createPrivateKey(tls.key)))
    problems.push('TEMPORAL_TLS_KEY is not the private key of TEMPORAL_TLS_CERT');
  tls.cert = cert?.pem;
  return tls;
}
