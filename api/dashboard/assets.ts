// Serves the dashboard's own stylesheet and scripts (no CDN, no build step). A fixed list, read
// once at start: nothing from the request reaches the file system.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';

const TYPES: Record<string, string> = { '.css': 'text/css; charset=utf-8', '.js': 'text/javascript; charset=utf-8' };
export const ASSET_NAMES = ['dashboard.css', 'dashboard.js', 'repo-picker.js'] as const;

/** GET /assets/<name> for the files in ./assets. */
export async function assetRoutes(app: FastifyInstance): Promise<void> {
  const files = new Map(ASSET_NAMES.map((name) => [name as string, readFileSync(join(__dirname, 'assets', name))]));
  app.get<{ Params: { name: string } }>('/assets/:name', { schema: { hide: true } }, async (req, reply) => {
    const file = files.get(req.params.name);
    if (!file) return reply.status(404).type('text/plain').send('not found');
    return reply
      .headers({
        'content-type': TYPES[req.params.name.slice(req.params.name.lastIndexOf('.'))],
        'cache-control': 'no-cache',
        'x-content-type-options': 'nosniff',
      })
      .send(file);
  });
}
