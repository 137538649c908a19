// The notifier against the real Postgres, with a Temporal client that answers as an unreachable
// server does (gRPC UNAVAILABLE) for a while: a signal it did not take is sent again in the
// background, since the change it announces is already committed and answered.
import { randomBytes, randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { createDb, type Db } from '../../lib/db';
import { createDispatchNotifier } from '../../lib/dispatch-notifier';
import { fingerprint } from '../../lib/secrets';
import { eventually, runLogger } from '../helpers/harness';
import { testDatabaseUrl } from '../helpers/test-env';

let db: Db;
beforeAll(() => {
  db = createDb(testDatabaseUrl(), { max: 2 });
});
afterAll(async () => {
  await db?.$disconnect();
});

/** A rig with one running dispatch; returns the rig id and the dispatch's workflow id. */
async function runningDispatch() {
  const town = await db.town.create({ data: { name: 'notifier', owner: { create: {} } } });
  const rig = await db.rig.create({
    data: { townId: town.id, name: `r-${randomUUID()}`, gitUrl: 'https://git.example.com/a/b.git', defaultBranch: 'main' },
  });
  const id = randomUUID();
  await db.agentDispatch.create({
    data: {
      id,
      rigId: rig.id,
      containerUrl: 'http://127.0.0.1:9/c',
      containerTokenHash: fingerprint(randomBytes(16).toString('hex')),
      containerTokenEnc: 'x',
      workflowId: `git-token-${id}`,
    },
  });
  return { rigId: rig.id, workflowId: `git-token-${id}` };
}

/** A Temporal client whose signals fail `failures` times, then succeed; records each attempt. */
function temporalFailing(failures: number) {
  const attempts: Array<{ workflowId: string; at: number }> = [];
  const client = {
    workflow: {
      getHandle: (workflowId: string) => ({
        signal: async () => {
          attempts.push({ workflowId, at: Date.now() });
          if (attempts.length <= failures) throw Object.assign(new Error('14 UNAVAILABLE: connection refused'), { code: 14 });
        },
      }),
    },
  } as unknown as Pick<Client, 'workflow'>;
  return { client, attempts };
}

const until = (ok: () => boolean, ms = 5000) => eventually(async () => ok(), ms, 'the signals');

it('sends a signal Temporal did not take again, with backoff, until it is taken', async () => {
  const { rigId, workflowId } = await runningDispatch();
  const { client, attempts } = temporalFailing(2);
  const notifier = createDispatchNotifier({ db, temporal: client, retryMs: [50, 100, 200] });
  expect(await notifier.rigChanged(rigId, 'rig access changed')).toBe(0); // not taken now
  await until(() => attempts.length === 3);
  expect(attempts.map((a) => a.workflowId)).toEqual([workflowId, workflowId, workflowId]);
  expect(attempts[1].at - attempts[0].at).toBeGreaterThanOrEqual(45);
  expect(attempts[2].at - attempts[1].at).toBeGreaterThanOrEqual(95);
  await new Promise((r) => setTimeout(r, 300));
  expect(attempts).toHaveLength(3); // taken: no more
});

it('gives up after its last wait and says so in the log', async () => {
  const { rigId, workflowId } = await runningDispatch();
  const { client, attempts } = temporalFailing(100);
  const { logger, logs } = runLogger('notifier');
  const notifier = createDispatchNotifier({ db, temporal: client, logger, retryMs: [20, 20] });
  await notifier.rigChanged(rigId, 'rig access changed');
  await until(() => logs.length === 1);
  expect(attempts).toHaveLength(3);
  expect(JSON.parse(logs[0])).toMatchObject({ workflowId, msg: expect.stringContaining('next refresh') as string });
});
