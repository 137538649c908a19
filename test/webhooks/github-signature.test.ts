// X-Hub-Signature-256 checks and payload parsing (pure, no I/O).
import { createHmac } from 'node:crypto';
import { githubSignature, parseWebhookPayload, verifyGithubSignature } from '../../api/webhooks/github-signature';

const body = Buffer.from('{"action":"suspend","installation":{"id":1}}');
const good = `sha256=${createHmac('sha256', 's3cret').update(body).digest('hex')}`;

it('accepts exactly the HMAC-SHA256 of the raw body under the secret', () => {
  expect(githubSignature('s3cret', body)).toBe(good);
  expect(verifyGithubSignature('s3cret', body, good)).toBe(true);
  expect(verifyGithubSignature('s3cret', body, good.toUpperCase().replace('SHA256=', 'sha256='))).toBe(true);
  expect(verifyGithubSignature('other', body, good)).toBe(false);
  expect(verifyGithubSignature('s3cret', Buffer.from(`${body} `), good)).toBe(false);
  for (const bad of [undefined, '', 'sha1=abc', good.slice(0, -1), [good, good]])
    expect(verifyGithubSignature('s3cret', body, bad)).toBe(false);
});

it('reads JSON and form-encoded payloads', () => {
  expect(parseWebhookPayload(body, 'application/json')).toEqual({ action: 'suspend', installation: { id: 1 } });
  const form = Buffer.from(`payload=${encodeURIComponent(body.toString())}`);
  expect(parseWebhookPayload(form, 'application/x-www-form-urlencoded')).toEqual({ action: 'suspend', installation: { id: 1 } });
  expect(() => parseWebhookPayload(Buffer.from('not json'), 'application/json')).toThrow();
});
