// `npx tsx scripts/reencrypt-secrets.ts` (in compose: `docker compose exec api node --import tsx
// scripts/reencrypt-secrets.ts`): after rotating SECRETS_KEY, rewrites every stored secret under the
// new key, then says how many ciphertexts each SECRETS_KEY_PREVIOUS key still protects. When those
// are all zero the old key can be removed. Safe to run while the service runs.
import { Client } from 'pg';
import { loadConfig, ConfigError } from '../lib/config';
import { countUnderKey, reencryptSecrets } from '../lib/reencrypt';
import { createSecretBox, keyIdOf } from '../lib/secrets';

async function main(): Promise<void> {
  const config = loadConfig();
  const box = createSecretBox(config.secretsKeys);
  const db = new Client({ connectionString: config.databaseUrl });
  await db.connect();
  try {
    process.stdout.write(`re-encrypting under key ${box.keyId}\n`);
    for (const c of await reencryptSecrets(db, box)) {
      process.stdout.write(`  ${c.column}: ${c.rewritten} rewritten, ${c.raced} changed meanwhile, ${c.unreadable} unreadable\n`);
    }
    for (const key of config.secretsKeys.slice(1)) {
      const left = Object.values(await countUnderKey(db, keyIdOf(key))).reduce((a, b) => a + b, 0);
      process.stdout.write(
        `previous key ${keyIdOf(key)}: ${left} ciphertexts left${left === 0 ? ' (it can be removed from SECRETS_KEY_PREVIOUS)' : ''}\n`,
      );
    }
  } finally {
    await db.end();
  }
}

main().catch((err) => {
  process.stderr.write(`${err instanceof ConfigError || err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
