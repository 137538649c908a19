// The shapes of a dispatch's lease, shared by the lease store and the statements that write it,
// so both import this file and neither imports the other's types.
import type { CredentialScope, CredentialSource, DispatchStatus, LeaseMeta } from '../workflows/git-token-types';

/** A dispatch joined with its lease, as read from Postgres. */
export interface LeaseRow {
  id: string;
  rig_id: string;
  status: DispatchStatus;
  ended_at: Date | null;
  container_url: string;
  container_token_enc: string;
  generation: number | null;
  credential_source: CredentialSource | null;
  token_enc: string | null;
  previous_token_enc: string | null;
  previous_expires_at: Date | null;
  revocable: boolean | null;
  username: string | null;
  fingerprint: string | null;
  expires_at: Date | null;
  integration_id: string | null;
  access: 'read' | 'write' | null;
  mint_key: string | null;
}

export interface Credential {
  token: string;
  /** True for per-dispatch GitHub installation tokens: the only kind a stop revokes. */
  revocable: boolean;
  /** null only for static town tokens. */
  expiresAt: Date | null;
  username: string;
  source: CredentialSource;
  /** How far it reaches, and why a GitLab grant stands in for a project token (null otherwise). */
  scope: CredentialScope;
  scopeReason: string | null;
  /** The integration that issued it (null for town tokens). */
  integrationId: string | null;
  /** The rig access a GitHub token was minted for (contents: read or write); absent for other tokens. */
  access?: 'read' | 'write';
}

export interface CurrentLease {
  dispatchId: string;
  rigId: string;
  status: DispatchStatus;
  /** True once the dispatch is ending or has ended: nothing may be minted or pushed. */
  ended: boolean;
  containerUrl: string;
  containerTokenEnc: string;
  generation: number;
  token: string | null;
  username: string;
  expiresAt: Date | null;
  source: CredentialSource;
  fingerprint: string;
  mintKey: string;
  /** The row as read: lets `write` store the next generation in one statement when nothing changed since. */
  readonly seen: LeaseRow;
}

export interface WriteResult {
  meta: LeaseMeta;
  /** Another attempt of the same mint already stored its token: this attempt's token is surplus. */
  duplicate: boolean;
  /** Replaced GitHub tokens nobody will hold any more (the rig switched source): revoke them now. */
  revokeNow: string[];
}

/** A GitHub token a dispatch still holds, for revocation when it ends. */
export interface RevocableToken {
  token: string;
  which: 'current' | 'replaced';
  /** Its stated expiry (null: none stated). */
  expiresAt: Date | null;
}

export type EventKind = 'minted' | 'pushed' | 'push_failed' | 'pulled' | 'refresh_failed' | 'revoked';
