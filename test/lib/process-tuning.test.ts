import { semiSpaceChosen, serviceNodeArgs, WORKER_NODE_OPTIONS } from '../../lib/process-tuning';

describe('process tuning', () => {
  it('sees a semi-space size chosen on the command line or in NODE_OPTIONS, in either spelling', () => {
    expect(semiSpaceChosen([], undefined)).toBe(false);
    expect(semiSpaceChosen(['--import', 'tsx'], '--max-old-space-size=512')).toBe(false);
    expect(semiSpaceChosen(['--max-semi-space-size=8'], undefined)).toBe(true);
    expect(semiSpaceChosen([], '--inspect --max_semi_space_size=1')).toBe(true);
  });

  it('shrinks the main isolate of a worker-only process, unless NODE_OPTIONS already sizes it', () => {
    expect(serviceNodeArgs('worker', undefined)).toEqual([WORKER_NODE_OPTIONS]);
    expect(serviceNodeArgs('worker', '--max-semi-space-size=16')).toEqual([]);
    expect(serviceNodeArgs('all', undefined)).toEqual([]);
    expect(serviceNodeArgs('api', undefined)).toEqual([]);
    expect(serviceNodeArgs(undefined, undefined)).toEqual([]);
  });
});
