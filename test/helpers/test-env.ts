// Configuration for tests: the real loadConfig over a test environment, never process.env.
import { randomBytes } from 'node:crypto';
import { loadConfig, type Config } from '../../lib/config';

/** Server URL the suite creates its databases on (any database name in it is ignored). */
export function testServerUrl(): string {
  return process.env.TEST_POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
}

/** This run's own database, created by global setup (one per jest run, so runs never collide). */
export function testDatabaseUrl(): string {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) throw new Error('TEST_DATABASE_URL is not set: run tests through jest (global setup creates the database)');
  return url;
}

/** Temporal dev server address started by global setup. */
export function testTemporalAddress(): string {
  const address = process.env.TEST_TEMPORAL_ADDRESS;
  if (!address) throw new Error('TEST_TEMPORAL_ADDRESS is not set: run tests through jest (global setup starts Temporal)');
  return address;
}

const SECRETS_KEY = randomBytes(32).toString('base64');

/** A complete, valid environment for the service under test. */
export function testEnv(overrides: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    NODE_ENV: 'test',
    DATABASE_URL: testDatabaseUrl(),
    TEMPORAL_ADDRESS: process.env.TEST_TEMPORAL_ADDRESS ?? '127.0.0.1:7233',
    ADMIN_API_TOKEN: 'test-admin-token-0123456789',
    SECRETS_KEY,
    PORT: '0',
    LOG_LEVEL: 'silent',
    // Provider calls time out after 3 s in tests (10 s by default), so timeout tests stay short.
    PROVIDER_TIMEOUT_SECONDS: '3',
    // Every test signs in from 127.0.0.1; the limit itself is tested with a low value of its own.
    LOGIN_RATE_LIMIT_PER_MINUTE: '100000',
    ...overrides,
  };
}

/** loadConfig over testEnv(overrides). */
export function testConfig(overrides: Record<string, string | undefined> = {}): Config {
  return loadConfig(testEnv(overrides));
}
