// A workflow interceptor for replay tests only (bundled into a test bundle, never the worker's):
// hands every command an activation concludes with, arguments included, to a sink that also runs
// during replay, so the test can compare them with what the recorded history says was issued.
import { proxySinks, type Sinks, type WorkflowInterceptors } from '@temporalio/workflow';

export interface CommandRecorderSinks extends Sinks {
  commandRecorder: { activation(commandsJson: string): void };
}

export const interceptors = (): WorkflowInterceptors => {
  const { commandRecorder } = proxySinks<CommandRecorderSinks>();
  return {
    internals: [
      {
        concludeActivation(input, next) {
          const out = next(input);
          const text = new TextDecoder();
          // Payload bytes as text, so the sink receives plain JSON.
          commandRecorder.activation(JSON.stringify(out.commands, (_k, v) => (v instanceof Uint8Array ? { utf8: text.decode(v) } : v)));
          return out;
        },
      },
    ],
  };
};
