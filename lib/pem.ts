// Keys and certificates from the environment: PEM text (with `\n` for line breaks, as one .env line
// holds it) or a path to a PEM file. Each is parsed here, so a bad one fails the boot with the name
// of its variable rather than the first call that needs it.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';

function readPem(value: string): string {
  if (value.includes('-----BEGIN')) return value.replace(/\\n/g, '\n');
  if (!existsSync(value)) throw new Error(`is neither PEM text nor a readable file (${described(value)})`);
  return readFileSync(value, 'utf8');
}

/**
 * What a refusal may say of a value: a path is shown; anything else may be the key itself in
 * another form (base64, the usual way secrets are passed around) and is not, since boot errors go
 * to the console and the logs.
 */
function described(value: string): string {
  if (/^(\/|\.\.?\/)[^\s]{0,1024}$/.test(value)) return value;
  if (value.startsWith('LS0t')) return 'not shown; it looks like base64: give the PEM text or a path';
  return 'not shown: not a path';
}

/** A private key, checked to parse. */
export function readPrivateKey(value: string): string {
  const pem = readPem(value);
  createPrivateKey(pem); // throws on garbage, so a bad key fails the boot, not the first mint
  return pem;
}

/** A certificate (the first of a bundle is parsed), and the parsed one. */
export function readCertificate(value: string): { pem: string; x509: X509Certificate } {
  const pem = readPem(value);
  return { pem, x509: new X509Certificate(pem) };
}
