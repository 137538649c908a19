// Temporal's own floor per refresh cycle on this machine: the worker and server CPU of a workflow
// that only wakes on a timer and runs a no-op local activity (floor-workflow.ts), with as many runs
// and the same period as the token loop. The token loop cannot cost less than this plus the direct
// path; what it costs above both is this project's orchestration. With `design: 'held'` it measures
// instead a design without a workflow task per cycle (heldFloorWorkflow), for comparison.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { SERVICE_PROCESS_ENV } from '../lib/process-tuning';
import { PROJECT_ROOT } from '../scripts/temporal-cli';
import { cpuSeconds, pool } from './env';

export interface TemporalFloorOptions {
  temporalAddress: string;
  temporalPid: number;
  workflows: number;
  /** Cycles measured after every run's first (which includes its start). */
  cycles: number;
  /** Each run sleeps this long plus up to `jitterMs` between cycles, as the loop's refreshes are spread. */
  periodMs: number;
  jitterMs: number;
  /** `workflow`: a workflow task per cycle (the floor); `held`: the loop held in one activity, a heartbeat per cycle. */
  design?: 'workflow' | 'held';
  log: (line: string) => void;
}

export async function runTemporalFloor(o: TemporalFloorOptions) {
  const design = o.design ?? 'workflow';
  const taskQueue = `bench-floor-${design}-${Date.now()}`;
  // Profiling hook, as for the service's processes: BENCH_FLOOR_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof".
  const nodeArgs = process.env.BENCH_FLOOR_NODE_ARGS?.split(' ') ?? [];
  const script = join(PROJECT_ROOT, 'bench', 'floor-worker.ts');
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', script, o.temporalAddress, taskQueue, design], {
    cwd: PROJECT_ROOT,
    env: { PATH: process.env.PATH, ...SERVICE_PROCESS_ENV, NODE_ENV: 'production' },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  const reap = () => child.kill('SIGKILL'); // never outlive the bench, even when it crashes
  process.once('exit', reap);
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const message = () =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const onExit = () => reject(new Error(`floor worker exited: ${stderr}`));
      child.once('exit', onExit);
      child.once('message', (m) => {
        child.off('exit', onExit);
        resolve(m as Record<string, unknown>);
      });
    });
  const ticks = async () => {
    const reply = message();
    child.send('count');
    return (await reply).ticks as number;
  };
  const ready = message(); // listening before the worker can say it
  const connection = await Connection.connect({ address: o.temporalAddress });
  const client = new Client({ connection });
  try {
    await ready;
    const ids = Array.from({ length: o.workflows }, (_, i) => `${taskQueue}-${i}`);
    o.log(
      design === 'held'
        ? `temporal floor, held design: starting ${o.workflows} workflows, each waiting on one activity that heartbeats once a cycle`
        : `temporal floor: starting ${o.workflows} empty workflows (timer + no-op local activity)`,
    );
    await pool(ids, 64, (workflowId, i) =>
      client.workflow.start(design === 'held' ? 'heldFloorWorkflow' : 'floorWorkflow', {
        taskQueue,
        workflowId,
        // One more cycle than measured, so no run completes inside the window.
        args: [{ cycles: o.cycles + 2, periodMs: o.periodMs + ((i * 7919) % Math.max(1, o.jitterMs)) }],
      }),
    );
    const until = async (n: number) => {
      for (;;) {
        const t = await ticks();
        if (t >= n) return t;
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const t0 = await until(o.workflows);
    const a = { worker: cpuSeconds(child.pid!), temporal: cpuSeconds(o.temporalPid), at: performance.now() };
    const t1 = await until(o.workflows * (o.cycles + 1));
    const b = { worker: cpuSeconds(child.pid!), temporal: cpuSeconds(o.temporalPid), at: performance.now() };
    await pool(ids, 64, (id) =>
      client.workflow
        .getHandle(id)
        .terminate('bench done')
        .catch(() => undefined),
    );
    const cycles = t1 - t0;
    const perCycle = (seconds: number) => (seconds * 1000) / cycles;
    o.log(`temporal floor (${design}): ${cycles} cycles in ${((b.at - a.at) / 1000).toFixed(1)} s`);
    return {
      design,
      workflows: o.workflows,
      cycles,
      window_s: (b.at - a.at) / 1000,
      worker_ms_per_cycle: perCycle(b.worker - a.worker),
      temporal_ms_per_cycle: perCycle(b.temporal - a.temporal),
      all_ms_per_cycle: perCycle(b.worker - a.worker + b.temporal - a.temporal),
    };
  } finally {
    child.kill('SIGINT');
    await exited;
    process.off('exit', reap);
    await connection.close();
  }
}
