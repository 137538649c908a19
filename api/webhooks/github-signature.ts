// GitHub webhook authenticity: X-Hub-Signature-256 is HMAC-SHA256 of the raw body under the
// webhook secret. Verified over the exact bytes received; re-serialised JSON would not match.
import { createHmac } from 'node:crypto';
import { safeEqual } from '../../lib/secrets';

/** The header value GitHub would send for `body`. */
export function githubSignature(secret: string, body: Buffer | string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** True when `header` is the valid signature of `body` (constant-time comparison). */
export function verifyGithubSignature(secret: string, body: Buffer, header: string | string[] | undefined): boolean {
  if (typeof header !== 'string' || !/^sha256=[0-9a-f]{64}$/i.test(header)) return false;
  return safeEqual(header.toLowerCase(), githubSignature(secret, body));
}

/** The JSON payload of a delivery, whether the hook sends application/json or form-encoded `payload=`. */
export function parseWebhookPayload(body: Buffer, contentType: string | undefined): unknown {
  const text = body.toString('utf8');
  const json = contentType?.startsWith('application/x-www-form-urlencoded') ? (new URLSearchParams(text).get('payload') ?? '') : text;
  return JSON.parse(json);
}
