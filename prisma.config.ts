// Prisma CLI configuration. Only `prisma generate` runs on the offline dev machine; migrations are
// applied by scripts/migrate.ts, which records them in `_prisma_migrations` exactly like
// `prisma migrate deploy`, so either tool can take over on a machine that has the schema engine.
import { defineConfig } from 'prisma/config';

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: {
    // The CLI is a tool, not the service: it may read the environment directly.
    url: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/repo_connect',
  },
});
