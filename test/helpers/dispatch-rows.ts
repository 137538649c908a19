// Dispatch rows written below the API, for tests of what reads them (the pull path's caches, the
// pull audit): a rig connected by a manual git URL, and dispatches of it that no workflow runs.
import { randomUUID } from 'node:crypto';
import { sha256Hex } from '../../lib/secrets';
import { newOwner, type Harness } from './harness';

/** A town of a new owner with one rig by manual git URL; returns the rig's id. */
export async function manualRig(h: Harness, town: string): Promise<string> {
  const t = await h.call<{ id: string }>('POST', '/api/towns', { name: town, owner_id: newOwner() });
  const rig = await h.call<{ id: string }>('POST', `/api/towns/${t.body.id}/rigs`, {
    name: 'r',
    git_url: 'https://git.example.com/a/b.git',
  });
  return rig.body.id;
}

/** A dispatch row of `rigId` for the container token `bearer` (no workflow: nothing runs it). */
export async function dispatchRow(
  h: Harness,
  rigId: string,
  opts: { bearer?: string; status?: 'active' | 'stopped' } = {},
): Promise<{ id: string; hash: string }> {
  const id = randomUUID();
  const hash = sha256Hex(opts.bearer ?? randomUUID());
  await h.core.db.agentDispatch.create({
    data: {
      id,
      rigId,
      containerUrl: 'http://127.0.0.1:9',
      containerTokenHash: hash,
      containerTokenEnc: 'x',
      workflowId: `wf-${id}`,
      status: opts.status ?? 'stopped',
    },
  });
  return { id, hash };
}
