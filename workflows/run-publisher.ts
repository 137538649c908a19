// What the Temporal UI shows of a run as it goes: its current details and its search attributes.
// Attributes change only with status, source or scope, so history does not grow per refresh; the
// current details (kept by the worker, read by the UI through a query) follow every change.
import { patched, setCurrentDetails, upsertSearchAttributes } from '@temporalio/workflow';
import type { CarriedState } from './git-token-types';
import { currentDetails } from './git-token-state';
import { CredentialScopeKey, CredentialSourceKey, DispatchStatusKey } from './search-attributes';

/** Publishes a run's state; `continued` is the state a continued run starts from (its attributes carry over). */
export function runPublisher(continued: CarriedState | undefined): (s: CarriedState) => void {
  let status: string | undefined = continued ? continued.status : 'starting';
  let source: string | undefined = continued?.credentialSource;
  let scope: string | undefined = continued?.credentialScope;
  return (s) => {
    setCurrentDetails(currentDetails(s));
    // CredentialScope is upserted too since the scope came: a run whose history has no marker for
    // it (recorded by earlier code) replays without that upsert.
    const withScope = s.credentialScope !== undefined && s.credentialScope !== scope && patched('credential-scope-attribute');
    if (s.status === status && s.credentialSource === source && !withScope) return;
    upsertSearchAttributes([
      { key: DispatchStatusKey, value: s.status },
      { key: CredentialSourceKey, value: s.credentialSource },
      ...(withScope ? [{ key: CredentialScopeKey, value: s.credentialScope! }] : []),
    ]);
    status = s.status;
    source = s.credentialSource;
    if (withScope) scope = s.credentialScope;
  };
}
