// How every process reaches the Temporal frontend: plaintext, TLS (system CAs or TEMPORAL_TLS_CA),
// mTLS (TEMPORAL_TLS_CERT + TEMPORAL_TLS_KEY) and/or an API key (Temporal Cloud). One function builds
// the options for the API's client Connection and the worker's NativeConnection alike; when the
// frontend does not answer, a plain TLS handshake says why (gRPC's own error rarely does).
import { connect as tlsConnect, type ConnectionOptions as TlsSocketOptions } from 'node:tls';
import type { TLSConfig } from '@temporalio/client';
import type { Config } from './config';

export interface TemporalConnectionOptions {
  address: string;
  tls?: TLSConfig;
  apiKey?: string;
  metadata?: Record<string, string>;
}

/** True when the frontend is reached over TLS (then `npm start` never starts a dev server). */
export function isSecured(t: Config['temporal']): boolean {
  return t.tls !== false;
}

/** Options for `Connection.connect` and `NativeConnection.connect`. */
export function temporalConnectionOptions(t: Config['temporal']): TemporalConnectionOptions {
  if (t.tls === false) return { address: t.address };
  const enc = (pem: string | undefined) => (pem === undefined ? undefined : Buffer.from(pem));
  const tls: TLSConfig = {
    ...(t.tls.serverName ? { serverNameOverride: t.tls.serverName } : {}),
    ...(t.tls.ca ? { serverRootCACertificate: enc(t.tls.ca) } : {}),
    ...(t.tls.cert && t.tls.key ? { clientCertPair: { crt: enc(t.tls.cert)!, key: enc(t.tls.key)! } } : {}),
  };
  // Temporal Cloud routes API-key calls by this header.
  return { address: t.address, tls, ...(t.apiKey ? { apiKey: t.apiKey, metadata: { 'temporal-namespace': t.namespace } } : {}) };
}

/**
 * Why a TLS handshake with the frontend fails (certificate not trusted, client certificate
 * required or refused, wrong name, nothing listening), or null when it succeeds. TLS 1.3 servers
 * refuse a client certificate after the handshake, so a completed one is held open briefly.
 */
export async function tlsHandshakeProblem(t: Config['temporal'], timeoutMs = 3000): Promise<string | null> {
  if (t.tls === false) return null;
  const [host, port] = [t.address.slice(0, t.address.lastIndexOf(':')), Number(t.address.slice(t.address.lastIndexOf(':') + 1))];
  const options: TlsSocketOptions = {
    host,
    port,
    servername: t.tls.serverName ?? (/^[\d.]+$|:/.test(host) ? undefined : host),
    ca: t.tls.ca,
    cert: t.tls.cert,
    key: t.tls.key,
    ALPNProtocols: ['h2'],
  };
  return new Promise((resolve) => {
    const socket = tlsConnect(options);
    const done = (problem: string | null) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(problem);
    };
    const timer = setTimeout(
      () => done(socket.encrypted && socket.authorized ? null : `no TLS handshake within ${timeoutMs} ms`),
      timeoutMs,
    );
    socket.once('secureConnect', () => {
      if (!socket.authorized)
        return done(explain(Object.assign(new Error(String(socket.authorizationError)), { code: String(socket.authorizationError) })));
      setTimeout(() => done(null), 300); // a TLS 1.3 server's certificate_required alert arrives now
    });
    socket.once('error', (err: NodeJS.ErrnoException) => done(explain(err)));
    socket.once('close', () => done('the server closed the connection during the TLS handshake'));
  });
}

// What the usual handshake failures mean for whoever set the TEMPORAL_TLS_* variables.
const REASONS: Array<[RegExp, string]> = [
  [
    /CERT_IN_CHAIN|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|SELF_SIGNED|CERT_UNTRUSTED/,
    "the server's certificate is not signed by TEMPORAL_TLS_CA (or, without it, a system CA)",
  ],
  [/CERTIFICATE_REQUIRED|certificate required/i, 'the frontend requires a client certificate: set TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY'],
  [
    /ALTNAME|Hostname\/IP does not match/i,
    "the server's certificate is not for this host name: check TEMPORAL_ADDRESS or TEMPORAL_TLS_SERVER_NAME",
  ],
  [
    /BAD_CERTIFICATE|UNKNOWN_CA|bad certificate|unknown ca/i,
    'the frontend refused the client certificate (TEMPORAL_TLS_CERT): not signed by a CA it trusts',
  ],
  [/CERTIFICATE_EXPIRED|CERT_HAS_EXPIRED/, 'a certificate has expired'],
  [/ECONNREFUSED/, 'nothing listens there'],
  [/WRONG_VERSION_NUMBER|packet length too long/i, 'the frontend does not speak TLS there (a plaintext port?)'],
];

function explain(err: NodeJS.ErrnoException): string {
  const raw = `${err.code ?? ''} ${err.message}`;
  const reason = REASONS.find(([re]) => re.test(raw))?.[1];
  const code = err.code ?? err.message.split('\n')[0];
  return reason ? `${reason} (${code})` : `${err.code ? `${err.code}: ` : ''}${err.message}`;
}

/** The error to show when the frontend did not answer: the handshake's reason when TLS is on. */
export async function temporalConnectError(t: Config['temporal'], err: unknown): Promise<Error> {
  const cause = err instanceof Error ? err.message : String(err);
  if (!isSecured(t)) return new Error(`cannot reach the Temporal frontend at ${t.address}: ${cause}`);
  const why = await tlsHandshakeProblem(t);
  return new Error(`cannot reach the secured Temporal frontend at ${t.address}: ${why ?? cause}`);
}
