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

/**
 * RSS of a quiet process once it has stopped falling: watched for at least 45 s, then until no new
 * low by 2 MB came within 20 s. A worker that has just gone quiet often holds its RSS for 15-20 s
 * before V8's memory reducer and malloc give memory back (seen as a 330 MB "quiet" worker that held
 * 290 MB with 1,000 dispatches later), and a baseline read before that flatters every figure above it.
 */
export async function settledRss(
  p: ServiceProcess,
  log: (line: string) => void,
  what = 'quiet worker',
  limitMs = 120_000,
): Promise<number> {
  const started = Date.now();
  let low = p.rssMb();
  let lowAt = Date.now();
  while (Date.now() - started < limitMs) {
    await new Promise((r) => setTimeout(r, 1_000));
    const now = p.rssMb();
    if (now < low - 2) {
      low = now;
      lowAt = Date.now();
    } else if (Date.now() - started >= 45_000 && Date.now() - lowAt >= 20_000) break;
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
