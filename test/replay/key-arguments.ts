// What a replay does not check by itself: the SDK matches each command to its recorded event by kind
// and activity type, not by arguments, so a changed timer duration, activity input or search
// attribute value replays "fine" while the new code would have done something else. These helpers
// reduce both sides to the same key arguments, in order per kind, for the corpus test to compare:
// timer durations, activity types and inputs, search attribute upserts, update results, the
// continue-as-new input and the workflow result. (Local activity inputs are not in history; their
// types are checked by the replay itself.)
import type { temporal } from '@temporalio/proto';

export interface KeyArguments {
  timers: number[];
  activities: Array<{ type: string; input: unknown[] }>;
  searchAttributes: Array<Record<string, unknown>>;
  updateResults: unknown[];
  continueAsNew: unknown[][];
  result: unknown[];
}

const empty = (): KeyArguments => ({ timers: [], activities: [], searchAttributes: [], updateResults: [], continueAsNew: [], result: [] });

type Duration = { seconds?: unknown; nanos?: unknown } | null | undefined;
/** int64 seconds arrive as a string (history) or as a protobufjs Long serialised to JSON (commands). */
function int64(v: unknown): number {
  if (v && typeof v === 'object' && 'low' in v && 'high' in v) return (Number(v.low) >>> 0) + Number(v.high) * 2 ** 32;
  return Number(v ?? 0);
}
const ms = (d: Duration) => int64(d?.seconds) * 1000 + Math.round(Number(d?.nanos ?? 0) / 1e6);

/** A payload's value: JSON text decoded, `binary/null` as null. */
function decode(text: string, encoding: string | undefined): unknown {
  if (encoding === 'binary/null') return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

const bytes = (b: Uint8Array | null | undefined) => Buffer.from(b ?? new Uint8Array()).toString('utf8');
const fromHistory = (p: temporal.api.common.v1.IPayload) => decode(bytes(p.data), bytes(p.metadata?.encoding));
const fromEvents = (ps: temporal.api.common.v1.IPayload[] | null | undefined) => (ps ?? []).map(fromHistory);

/** The key arguments the recorded history says were issued. */
export function fromHistoryEvents(events: temporal.api.history.v1.IHistoryEvent[]): KeyArguments {
  const k = empty();
  for (const e of events) {
    if (e.timerStartedEventAttributes) k.timers.push(ms(e.timerStartedEventAttributes.startToFireTimeout as Duration));
    const a = e.activityTaskScheduledEventAttributes;
    if (a) k.activities.push({ type: a.activityType?.name ?? '', input: fromEvents(a.input?.payloads) });
    const sa = e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields;
    // patched() upserts TemporalChangeVersion itself when it first records a marker; a replay,
    // which finds the marker, issues no such command.
    const fields = Object.entries(sa ?? {}).filter(([name]) => name !== 'TemporalChangeVersion');
    if (fields.length > 0) k.searchAttributes.push(Object.fromEntries(fields.map(([name, p]) => [name, fromHistory(p)])));
    const u = e.workflowExecutionUpdateCompletedEventAttributes?.outcome?.success;
    if (u) k.updateResults.push(fromEvents(u.payloads));
    const can = e.workflowExecutionContinuedAsNewEventAttributes;
    if (can) k.continueAsNew.push(fromEvents(can.input?.payloads));
    const done = e.workflowExecutionCompletedEventAttributes;
    if (done) k.result = fromEvents(done.result?.payloads);
  }
  return k;
}

type RecordedPayload = { data?: { utf8: string }; metadata?: Record<string, { utf8: string }> };
type Command = Record<string, Record<string, unknown> | undefined>;
const fromCommand = (p: RecordedPayload | undefined) => (p ? decode(p.data?.utf8 ?? '', p.metadata?.encoding?.utf8) : null);
const fromCommands = (ps: unknown) => ((ps as RecordedPayload[] | undefined) ?? []).map(fromCommand);

/**
 * The key arguments of the commands a replay issued (one JSON array per activation, as the
 * command recorder sends them). A timer or activity started and cancelled in one activation never
 * reaches history, so it is left out here too.
 */
export function fromActivations(activations: string[]): KeyArguments {
  const k = empty();
  for (const json of activations) {
    const commands = JSON.parse(json) as Command[];
    const cancelledTimers = new Set<unknown>(commands.map((c) => c.cancelTimer?.seq).filter((s) => s !== undefined));
    const cancelledActivities = new Set<unknown>(commands.map((c) => c.requestCancelActivity?.seq).filter((s) => s !== undefined));
    for (const c of commands) {
      if (c.startTimer && !cancelledTimers.has(c.startTimer.seq)) k.timers.push(ms(c.startTimer.startToFireTimeout as Duration));
      if (c.scheduleActivity && !cancelledActivities.has(c.scheduleActivity.seq))
        k.activities.push({ type: String(c.scheduleActivity.activityType), input: fromCommands(c.scheduleActivity.arguments) });
      const sa = c.upsertWorkflowSearchAttributes?.searchAttributes as { indexedFields?: Record<string, RecordedPayload> } | undefined;
      if (sa?.indexedFields)
        k.searchAttributes.push(Object.fromEntries(Object.entries(sa.indexedFields).map(([name, p]) => [name, fromCommand(p)])));
      const completed = (c.updateResponse as { completed?: RecordedPayload } | undefined)?.completed;
      if (completed) k.updateResults.push([fromCommand(completed)]);
      if (c.continueAsNewWorkflowExecution) k.continueAsNew.push(fromCommands(c.continueAsNewWorkflowExecution.arguments));
      if (c.completeWorkflowExecution) k.result = [fromCommand(c.completeWorkflowExecution.result as RecordedPayload)];
    }
  }
  return k;
}
