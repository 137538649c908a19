// In-process cache of dispatch leases, keyed by container-token hash, so a fresh pull touches
// neither Postgres nor a provider. Correct across API instances: every lease write NOTIFYs
// `repo_connect_leases` and each instance LISTENs and drops the entry. While the LISTEN connection
// is down nothing is cached (a missed notification could otherwise serve a superseded token).
//
// Unknown hashes are cached too, briefly, so a client repeating a wrong token does not cost a
// Postgres lookup each time. A new dispatch must never be stuck there: every insert into
// agent_dispatches NOTIFYs `repo_connect_dispatch_created` (a trigger), which clears the negative
// cache, and a lookup that raced such a notification does not cache its miss.
import { Client } from 'pg';
import type { Db } from './db';
import type { Logger } from './logger';
import { DISPATCH_CREATED_CHANNEL, LEASE_CHANNEL } from './lease-store';
import { leaseTokenContext } from './secret-contexts';
import type { SecretBox } from './secrets';
import { ENDED_STATUSES, type CredentialSource } from '../workflows/git-token-types';

export interface CachedLease {
  dispatchId: string;
  token: string;
  username: string;
  expiresAtMs: number | null;
  mintedAtMs: number;
  generation: number;
  fingerprint: string;
  source: CredentialSource;
  /** The pull route's response body, serialised once per lease instead of once per pull. */
  json: string;
}

/** Builds a cached lease, with its response body. */
export function cachedLease(l: Omit<CachedLease, 'json'>): CachedLease {
  const body = {
    token: l.token,
    expires_at: l.expiresAtMs === null ? null : new Date(l.expiresAtMs).toISOString(),
    username: l.username,
    generation: l.generation,
  };
  return { ...l, json: JSON.stringify(body) };
}

export interface CachedDispatch {
  dispatchId: string;
  rigId: string;
  workflowId: string;
  ended: boolean;
  lease: CachedLease | null;
  loadedAt: number;
}

const HEARTBEAT_MS = 10_000;
const HEARTBEAT_TIMEOUT_MS = 5_000;
/** A safety net under LISTEN/NOTIFY: no entry is trusted for longer than this. */
const MAX_ENTRY_AGE_MS = 60_000;
/** How long a hash Postgres did not know is answered 401 from memory. */
const UNKNOWN_TTL_MS = 5_000;

export interface LeaseCacheDeps {
  db: Db;
  secrets: SecretBox;
  databaseUrl: string;
  logger?: Logger;
  /** Bounds memory: least recently loaded entries go first. */
  maxEntries?: number;
  /** Bounds the negative cache the same way. */
  maxUnknown?: number;
}

export function createLeaseCache(deps: LeaseCacheDeps) {
  const byHash = new Map<string, CachedDispatch>();
  const hashByDispatch = new Map<string, string>();
  const maxEntries = deps.maxEntries ?? 50_000;
  const maxUnknown = deps.maxUnknown ?? 10_000;
  /** Hashes Postgres did not know, with when they stop being trusted. */
  const unknown = new Map<string, number>();
  /** Sequence number of the last dispatch-created notification: a miss read before it is not cached. */
  let createdSeq = 0;
  let listener: Client | undefined;
  let listening = false;
  let closed = false;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let heartbeat: NodeJS.Timeout | undefined;
  // A load racing a notification must not cache what it read before the change: each
  // notification stamps its dispatch with a sequence number the load compares against.
  let seq = 0;
  /** Loads that started before this sequence must not cache (the stamps below were forgotten). */
  let floor = 0;
  const notifiedAt = new Map<string, number>();

  function onNotify(dispatchId: string) {
    seq += 1;
    if (notifiedAt.size > 100_000) {
      notifiedAt.clear();
      floor = seq;
    }
    notifiedAt.set(dispatchId, seq);
    drop(dispatchId);
  }

  function onCreated() {
    seq += 1;
    createdSeq = seq;
    unknown.clear();
  }

  function mayCache(dispatchId: string, startedAt: number): boolean {
    return listening && startedAt >= floor && (notifiedAt.get(dispatchId) ?? 0) <= startedAt;
  }

  function drop(dispatchId: string) {
    const hash = hashByDispatch.get(dispatchId);
    if (hash) byHash.delete(hash);
    hashByDispatch.delete(dispatchId);
  }

  function clear() {
    seq += 1;
    floor = seq;
    notifiedAt.clear();
    byHash.clear();
    hashByDispatch.clear();
    unknown.clear();
  }

  async function connect(): Promise<void> {
    // TCP keepalive plus a heartbeat: a half-open connection would otherwise look alive while
    // notifications silently stop.
    const client = new Client({ connectionString: deps.databaseUrl, keepAlive: true });
    client.on('notification', (msg) => {
      if (msg.channel === LEASE_CHANNEL && msg.payload) onNotify(msg.payload);
      else if (msg.channel === DISPATCH_CREATED_CHANNEL) onCreated();
    });
    client.on('error', (err) => {
      deps.logger?.warn({ err: { message: err.message } }, 'lease cache listener lost; serving from Postgres until it is back');
      onDisconnect(client);
    });
    client.on('end', () => onDisconnect(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${LEASE_CHANNEL}`);
      await client.query(`LISTEN ${DISPATCH_CREATED_CHANNEL}`);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    // Loads that started while nobody listened may hold what a missed notification replaced.
    seq += 1;
    floor = seq;
    listener = client;
    listening = true;
    heartbeat = setInterval(() => {
      const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('heartbeat timed out')), HEARTBEAT_TIMEOUT_MS).unref());
      Promise.race([client.query('SELECT 1'), timeout]).catch(() => onDisconnect(client));
    }, HEARTBEAT_MS);
    heartbeat.unref();
  }

  function onDisconnect(client: Client) {
    if (listener !== client) return;
    listening = false;
    listener = undefined;
    if (heartbeat) clearInterval(heartbeat);
    clear();
    client.end().catch(() => undefined);
    if (!closed) scheduleReconnect(1000);
  }

  function scheduleReconnect(delayMs: number) {
    reconnectTimer = setTimeout(() => {
      connect().catch(() => scheduleReconnect(Math.min(delayMs * 2, 30_000)));
    }, delayMs);
    reconnectTimer.unref();
  }

  return {
    get listening() {
      return listening;
    },

    async start(): Promise<void> {
      await connect();
    },

    /** The cached entry for a container-token hash, if any. */
    get(tokenHash: string): CachedDispatch | undefined {
      if (!listening) return undefined;
      const entry = byHash.get(tokenHash);
      return entry && Date.now() - entry.loadedAt < MAX_ENTRY_AGE_MS ? entry : undefined;
    },

    /** True when Postgres did not know `tokenHash` a moment ago (and no dispatch was created since). */
    isUnknown(tokenHash: string): boolean {
      const until = unknown.get(tokenHash);
      if (until === undefined) return false;
      if (listening && Date.now() < until) return true;
      unknown.delete(tokenHash);
      return false;
    },

    /** Hashes in the negative cache now (bounded by maxUnknown). */
    get unknownSize() {
      return unknown.size;
    },

    /** Reads the dispatch and lease from Postgres (and caches them, or the miss, while LISTEN is up). */
    async load(tokenHash: string): Promise<CachedDispatch | null> {
      const startedAt = seq;
      const row = await deps.db.agentDispatch.findUnique({
        where: { containerTokenHash: tokenHash },
        select: { id: true, rigId: true, workflowId: true, status: true, endedAt: true, lease: true },
      });
      if (!row) {
        if (listening && createdSeq <= startedAt && startedAt >= floor) {
          unknown.delete(tokenHash);
          while (unknown.size >= maxUnknown) unknown.delete(unknown.keys().next().value as string);
          unknown.set(tokenHash, Date.now() + UNKNOWN_TTL_MS);
        }
        return null;
      }
      const l = row.lease;
      const entry: CachedDispatch = {
        dispatchId: row.id,
        rigId: row.rigId,
        workflowId: row.workflowId,
        // Ending starts by stamping ended_at (then tokens are revoked, then the status is final).
        ended: row.endedAt !== null || ENDED_STATUSES.includes(row.status),
        loadedAt: Date.now(),
        lease:
          l && l.tokenEnc !== null
            ? cachedLease({
                dispatchId: row.id,
                token: deps.secrets.decrypt(l.tokenEnc, leaseTokenContext(row.id)),
                username: l.username,
                expiresAtMs: l.expiresAt?.getTime() ?? null,
                mintedAtMs: l.createdAt.getTime(),
                generation: l.generation,
                fingerprint: l.fingerprint,
                source: l.credentialSource,
              })
            : null,
      };
      if (mayCache(row.id, startedAt)) {
        if (byHash.size >= maxEntries) {
          const oldest = byHash.keys().next().value as string;
          drop(byHash.get(oldest)!.dispatchId);
        }
        drop(row.id);
        byHash.set(tokenHash, entry);
        hashByDispatch.set(row.id, tokenHash);
      }
      return entry;
    },

    invalidate: drop,

    async close(): Promise<void> {
      closed = true;
      if (reconnectTimer) clearTimeout(reconnectTimer);
      const l = listener;
      listener = undefined;
      listening = false;
      if (heartbeat) clearInterval(heartbeat);
      clear();
      await l?.end().catch(() => undefined);
    },
  };
}

export type LeaseCache = ReturnType<typeof createLeaseCache>;
