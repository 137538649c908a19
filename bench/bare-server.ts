// The baseline for the pull route: bare Fastify answering a constant of the same shape and size.
import Fastify from 'fastify';

const body = {
  token: `ghs_${'x'.repeat(516)}`,
  expires_at: new Date(Date.now() + 3600_000).toISOString(),
  username: 'x-access-token',
  generation: 1,
};
const app = Fastify({ logger: false });
app.post('/constant', async () => body);
app
  .listen({ host: '127.0.0.1', port: Number(process.argv[2] ?? 0) })
  .then((address) => process.stdout.write(`bare listening ${address}\n`));
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
