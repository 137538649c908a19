// `npm run migrate`: applies pending migrations to DATABASE_URL (what the service does at boot).
import { loadConfig } from '../lib/config';
import { describeWait, migrate } from '../lib/migrate';

const databaseUrl = process.env.DATABASE_URL ?? loadConfig().databaseUrl;
migrate(databaseUrl, undefined, { onWait: (wait) => process.stderr.write(`${describeWait(wait)}\n`) })
  .then((applied) => process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'up to date\n'))
  .catch((err) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
