// Item 9 of the security review: in production ADMIN_API_TOKEN is the one credential for every
// route, so a short or guessable value must stop the boot, with the command that makes a good one.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { ConfigError, loadConfig } from '../../lib/config';
import { weakSecretReason } from '../../lib/secret-strength';

const production = {
  NODE_ENV: 'production',
  PUBLIC_URL: 'https://repo-connect.example.com',
  SECRETS_KEY: randomBytes(32).toString('base64'),
};

function bootProblems(adminToken: string, env: Record<string, string> = production): string[] {
  try {
    loadConfig({ ...env, ADMIN_API_TOKEN: adminToken });
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

const WEAK: Array<[string, string]> = [
  ['24 characters, enough before', 'Zx9!kQ2@mP7#vL4$nR8%tY6^'],
  ['one character repeated', 'a'.repeat(40)],
  ['two characters alternating', 'ab'.repeat(20)],
  ['a run of one character', `${randomBytes(16).toString('hex').slice(0, 20)}zzzzzzzzzzzz`],
  ['a passphrase of words', 'correct-horse-battery-staple-orbit'],
  ['a placeholder with digits', 'MyAdminPassword2026-for-production!'],
  ['changeme with padding', 'changeme-0123456789-changeme-0123456789'],
];

const GENERATED = [
  'VRIXMtD6foov+NbVm7ertNIvxrI3yO1Kj6zEe/B7OkM=',
  '3UqbpYPDbrb0OZER1BfpREcxyo4/Xn1eb4HeXNzZLPg=',
  'ey9Ve9t6HRWMOA0ZiyPZmblqqhBgM/8MBVORw1FYEa8=',
  'fkYCDV+9CV67HqzPeUU0xprgj3FTAkhoccEYmDAAp94=',
  '823d2d1a68900b530f19f06f27c753d7c45123ea20586d0ab12e4c87d6b244d1',
  'be71575289e95c1855d7cae63e0ada5a2b8ad5a06997424cf9d8e70e81a87d92',
  'COHHI2dSg2AXQh2YLmr0V-5tmqS9fze2FfHKv4S1N9U',
  'TN8V5pk5thSbmWneNnzW0e74qXqoyHQbxeDaXhKkLL4',
];

describe('ADMIN_API_TOKEN in production', () => {
  it.each(WEAK)('refuses %s, naming the variable and the generator command', (_what, token) => {
    const problems = bootProblems(token);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^ADMIN_API_TOKEN must/);
    expect(problems[0]).toContain('openssl rand -base64 32');
    expect(problems[0]).not.toContain(token); // a boot error is logged: it never quotes the secret
  });

  it('accepts what the generator commands make', () => {
    // Fixed outputs of `openssl rand -base64 32`, `-hex 32` and Node's base64url, so the test cannot
    // flake on the rare generated value the rule refuses (see lib/secret-strength.ts).
    for (const made of GENERATED) expect(bootProblems(made)).toEqual([]);
    const fromOpenssl = execFileSync('openssl', ['rand', '-base64', '32'], { encoding: 'utf8' }).trim();
    expect(bootProblems(fromOpenssl)).toEqual([]);
  });

  it('reports the weak token together with every other problem', () => {
    const problems = bootProblems('short', { ...production, PORT: 'eighty' });
    expect(problems.map((p) => p.split(' ')[0]).sort()).toEqual(['ADMIN_API_TOKEN', 'PORT']);
  });

  it('leaves development and test alone (npm start generates a 32-character token there)', () => {
    expect(bootProblems('a'.repeat(24), { ...production, NODE_ENV: 'development' })).toEqual([]);
    expect(bootProblems('a'.repeat(24), { ...production, NODE_ENV: 'test' })).toEqual([]);
  });

  it('states the rule as a pure function', () => {
    expect(weakSecretReason('x'.repeat(31))).toBe('must be at least 32 characters');
    expect(weakSecretReason(GENERATED[6])).toBeNull();
    expect(weakSecretReason('correct-horse-battery-staple-orbit')).toBe('must be random (it reads as words)');
  });
});
