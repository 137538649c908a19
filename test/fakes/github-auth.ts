// The fake GitHub's credential checks: app JWTs verified for real (RS256 against the app's public
// key, GitHub's claim rules) and installation tokens in GitHub's newer, long format.
import { generateKeyPair, randomBytes, verify, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';

const generateKeyPairAsync = promisify(generateKeyPair);

/** A fresh RSA 2048 key pair: the PEM goes to the test, the fake keeps only the public key. */
export async function newAppKeyPair(): Promise<{ privateKeyPem: string; publicKey: KeyObject }> {
  const { privateKey, publicKey } = await generateKeyPairAsync('rsa', { modulusLength: 2048 });
  return { privateKeyPem: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(), publicKey };
}

/** `ghs_` + 516 base64url characters: GitHub's newer installation tokens run past 500 characters. */
export function newInstallationToken(): string {
  return `ghs_${randomBytes(387).toString('base64url')}`;
}

const UNDECODABLE = 'A JSON web token could not be decoded';

export type JwtCheck = { ok: true; appId: string } | { ok: false; message: string };

/** Checks `Authorization: Bearer <jwt>` the way GitHub does for /app/* endpoints. */
export function verifyAppJwt(
  authorization: string | undefined,
  publicKeyOf: (appId: string) => KeyObject | undefined,
  nowSec = Math.floor(Date.now() / 1000),
): JwtCheck {
  const match = /^bearer\s+(\S+)$/i.exec(authorization ?? '');
  if (!match) return { ok: false, message: 'A JSON web token could not be decoded' };
  const parts = match[1].split('.');
  if (parts.length !== 3) return { ok: false, message: UNDECODABLE };
  let header: { alg?: string };
  let claims: { iss?: unknown; iat?: unknown; exp?: unknown };
  try {
    header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    return { ok: false, message: UNDECODABLE };
  }
  if (header.alg !== 'RS256') return { ok: false, message: UNDECODABLE };
  const appId = String(claims.iss ?? '');
  const key = publicKeyOf(appId);
  if (!key) return { ok: false, message: UNDECODABLE };
  const signed = Buffer.from(`${parts[0]}.${parts[1]}`);
  if (!verify('RSA-SHA256', signed, key, Buffer.from(parts[2], 'base64url'))) return { ok: false, message: UNDECODABLE };
  const { iat, exp } = claims;
  if (typeof iat !== 'number' || !Number.isInteger(iat) || iat > nowSec + 60) {
    return { ok: false, message: "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued." };
  }
  if (typeof exp !== 'number' || exp <= nowSec) {
    return {
      ok: false,
      message: "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires.",
    };
  }
  if (exp - iat > 600) return { ok: false, message: "'Expiration time' claim ('exp') is too far in the future." };
  return { ok: true, appId };
}

/** The token from `Authorization: token X` or `Bearer X`. */
export function bearerToken(authorization: string | undefined): string | undefined {
  const match = /^(?:token|bearer)\s+(\S+)$/i.exec(authorization ?? '');
  return match?.[1];
}
