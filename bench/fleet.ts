// What the bench's parts share: admin calls to the API, rigs for a fleet, a quiet worker's RSS and
// waiting for a fleet to end.
import { Client } from 'pg';
import type { FakeGitHub, FakeGithubApp } from '../test/fakes/github';
import type { ServiceProcess } from './env';

export interface ApiAccess {
  api: ServiceProcess;
  adminToken: string;
}

/** One admin call to the API; throws on a status ≥ 300. */
export async function call<T>(o: ApiAccess, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${o.api.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${o.adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status >= 300) throw new Error(`${method} ${path} → ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** Rigs for a fleet: installations of 10 repositories, one town and rig per repository; `prefix` keeps fleets apart. */
export async function createRigs(
  o: ApiAccess & { gh: FakeGitHub; app: FakeGithubApp },
  count: number,
  prefix = 'bench',
): Promise<string[]> {
  const rigIds: string[] = [];
  for (let i = 0; i < Math.ceil(count / 10); i++) {
    const owner = crypto.randomUUID();
    const inst = o.gh.addInstallation({ appId: o.app.appId, account: { login: `${prefix}-${i}` }, repositories: 10 });
    const integ = await call<{ id: string }>(o, 'POST', '/api/integrations', {
      provider: 'github',
      owner_id: owner,
      installation_id: inst.installationId,
      app_type: 'standard',
    });
    const town = await call<{ id: string }>(o, 'POST', '/api/towns', { name: `${prefix}-${i}`, owner_id: owner });
    for (const repo of inst.repositories) {
      const rig = await call<{ id: string }>(o, 'POST', `/api/towns/${town.id}/rigs`, {
        name: repo.name,
        platform_integration_id: integ.id,
        repository_id: repo.id,
      });
      rigIds.push(rig.id);
    }
  }
  return rigIds.slice(0, count);
}

/** RSS of a quiet process once it has stopped falling: no new low by 2 MB within 15 s. */
export async function settledRss(
  p: ServiceProcess,
  log: (line: string) => void,
  what = 'quiet worker',
  limitMs = 120_000,
): Promise<number> {
  const started = Date.now();
  let low = p.rssMb();
  let lowAt = Date.now();
  await new Promise((r) => setTimeout(r, 8_000));
  while (Date.now() - started < limitMs) {
    const now = p.rssMb();
    if (now < low - 2) {
      low = now;
      lowAt = Date.now();
    } else if (Date.now() - lowAt >= 15_000) break;
    await new Promise((r) => setTimeout(r, 1_000));
  }
  const rss = p.rssMb();
  log(`${what} RSS ${rss.toFixed(0)} MB after ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return rss;
}

/** Polls Postgres until every dispatch has ended (revoked and final); returns how many did. */
export async function waitUntilStopped(databaseUrl: string, ids: string[], timeoutMs = 180_000): Promise<number> {
  const db = new Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    for (const deadline = Date.now() + timeoutMs; ; await new Promise((r) => setTimeout(r, 500))) {
      const { rows } = await db.query<{ n: string }>(
        "SELECT count(*) AS n FROM agent_dispatches WHERE id = ANY($1::uuid[]) AND status IN ('stopped', 'container_unreachable')",
        [ids],
      );
      const n = Number(rows[0]?.n ?? 0);
      if (n === ids.length || Date.now() > deadline) return n;
    }
  } finally {
    await db.end();
  }
}
