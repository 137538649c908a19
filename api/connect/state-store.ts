// Single use of flow states: the nonce of a state that came back is recorded under a unique key,
// so a replayed callback (or two racing ones) finishes nothing, on any API instance.
import type { Db } from '../../lib/db';
import type { FlowState } from './connect-state';

/** Records the state's nonce; false when it was used before. */
export async function consumeState(db: Db, state: FlowState, now = new Date()): Promise<boolean> {
  await db.usedState.deleteMany({ where: { expiresAt: { lt: now } } });
  const { count } = await db.usedState.createMany({
    data: [{ nonce: state.nonce, usedAt: now, expiresAt: new Date(state.expiresAtMs) }],
    skipDuplicates: true,
  });
  return count === 1;
}
