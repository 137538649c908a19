// Search attributes operators filter on in the Temporal UI. Shared by the workflow (upserts), the
// API (start) and the tooling (registration). @temporalio/common is deterministic-safe.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const RigIdKey = defineSearchAttributeKey('RigId', SearchAttributeType.KEYWORD);
export const TownIdKey = defineSearchAttributeKey('TownId', SearchAttributeType.KEYWORD);
export const CredentialSourceKey = defineSearchAttributeKey('CredentialSource', SearchAttributeType.KEYWORD);
export const DispatchStatusKey = defineSearchAttributeKey('DispatchStatus', SearchAttributeType.KEYWORD);
/** `repository`, `account` (a GitLab grant standing in for a project token) or `static`. */
export const CredentialScopeKey = defineSearchAttributeKey('CredentialScope', SearchAttributeType.KEYWORD);
/**
 * The rig's repository when the dispatch started (`owner/repo`, or `host/path` for a manual URL), set
 * by the API at start only: the UI's workflow list shows search attributes as columns, not the summary.
 */
export const RepositoryKey = defineSearchAttributeKey('Repository', SearchAttributeType.KEYWORD);

/** Name → type, as the CLI's `--search-attribute` flag and the operator API want them. */
export const SEARCH_ATTRIBUTES = {
  RigId: 'Keyword',
  TownId: 'Keyword',
  CredentialSource: 'Keyword',
  DispatchStatus: 'Keyword',
  CredentialScope: 'Keyword',
  Repository: 'Keyword',
} as const;
