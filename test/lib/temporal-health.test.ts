// Whether Temporal serves: the frontend's health for the workflow service, not gRPC's default
// answer, which says SERVING while a frontend starts or drains.
import { Connection } from '@temporalio/client';
import { grpc } from '@temporalio/proto';
import { temporalAnswers, workflowServiceServing } from '../../lib/temporal';
import { testTemporalAddress } from '../helpers/test-env';

const { SERVING, NOT_SERVING } = grpc.health.v1.HealthCheckResponse.ServingStatus;

/** A frontend's health service answering `byService` (a name missing from it: NOT_FOUND, as gRPC does). */
function frontend(byService: Record<string, number>) {
  const asked: string[] = [];
  const healthService = {
    check: ({ service }: { service?: string | null }) => {
      asked.push(service ?? '');
      const status = byService[service ?? ''];
      if (status === undefined) return Promise.reject(Object.assign(new Error('5 NOT_FOUND: unknown service'), { code: 5 }));
      return Promise.resolve({ status });
    },
  } as unknown as Connection['healthService'];
  return { conn: { healthService }, asked };
}

const WORKFLOW_SERVICE = 'temporal.api.workflowservice.v1.WorkflowService';

it('asks for the workflow service: NOT_SERVING (starting, draining) is not serving though the default says SERVING', async () => {
  const draining = frontend({ '': SERVING, [WORKFLOW_SERVICE]: NOT_SERVING });
  expect(await workflowServiceServing(draining.conn)).toBe(false);
  expect(draining.asked).toEqual([WORKFLOW_SERVICE]);
  expect(await workflowServiceServing(frontend({ '': SERVING, [WORKFLOW_SERVICE]: SERVING }).conn)).toBe(true);
});

it('falls back to the unnamed check only when the name is unknown there (a front that knows no names)', async () => {
  const front = frontend({ '': SERVING });
  expect(await workflowServiceServing(front.conn)).toBe(true);
  expect(front.asked).toEqual([WORKFLOW_SERVICE, '']);
  expect(await workflowServiceServing(frontend({ '': NOT_SERVING }).conn)).toBe(false);
  const failing = { healthService: { check: () => Promise.reject(Object.assign(new Error('14 UNAVAILABLE'), { code: 14 })) } };
  await expect(workflowServiceServing(failing as unknown as Pick<Connection, 'healthService'>)).rejects.toThrow('UNAVAILABLE');
});

it('the suite dev server serves the workflow service', async () => {
  expect(await temporalAnswers(testTemporalAddress())).toBe(true);
  const connection = await Connection.connect({ address: testTemporalAddress() });
  try {
    expect(await workflowServiceServing(connection)).toBe(true);
  } finally {
    await connection.close();
  }
});
