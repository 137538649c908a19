// The authorization rule of the management API and the dashboard, one preHandler per route group:
// each route declares in its config which owned rows it touches (`owns`) and where it may name an
// owner (`ownerIn`). Admin passes everything. An owner reaches only rows whose owner_id is theirs:
// another owner's row answers 404 exactly like a missing one (ids leak nothing), and naming another
// owner_id answers 403. Handlers hold no ownership checks; a route that declares nothing fails at boot.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Db } from '../../lib/db';
import { badRequest, forbidden, notFound } from '../errors';
import type { Principal } from './principal';

export type ResourceKind = 'town' | 'rig' | 'integration' | 'dispatch' | 'owner';

/** A row the route touches, by where its id is in the request. */
export interface OwnedRef {
  kind: ResourceKind;
  in: 'params' | 'body' | 'query';
  field: string;
}

export interface Access {
  owns?: OwnedRef[];
  /** Where the request may name an `owner_id`. */
  ownerIn?: 'body' | 'query';
  /** Owners get 403 (after `owns`, so another owner's ids still answer 404). */
  adminOnly?: boolean;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
}

/** A row of `kind` whose id is `field` (default `<kind>_id`) in the params, body or query. */
export const owns = (kind: ResourceKind, field = `${kind}_id`, where: OwnedRef['in'] = 'params'): OwnedRef => ({ kind, in: where, field });

/** Route config declaring the rows a route touches. */
export const touches = (...refs: OwnedRef[]) => ({ access: { owns: refs } satisfies Access });

/** Route config of a route that touches no owned row by id (it may name an owner, or list the caller's own). */
export const ownerNamedIn = (where?: 'body' | 'query') => ({ access: (where ? { ownerIn: where } : {}) satisfies Access });

/** One small query per kind: the owner_id of the row, or undefined when there is none. */
async function ownerOf(db: Db, kind: ResourceKind, id: string): Promise<string | undefined> {
  switch (kind) {
    case 'owner':
      return id;
    case 'town':
      return (await db.town.findUnique({ where: { id }, select: { ownerId: true } }))?.ownerId;
    case 'integration':
      return (await db.platformIntegration.findUnique({ where: { id }, select: { ownerId: true } }))?.ownerId;
    case 'rig':
      return (await db.rig.findUnique({ where: { id }, select: { town: { select: { ownerId: true } } } }))?.town.ownerId;
    case 'dispatch':
      return (await db.agentDispatch.findUnique({ where: { id }, select: { rig: { select: { town: { select: { ownerId: true } } } } } }))
        ?.rig.town.ownerId;
  }
}

function valueIn(request: FastifyRequest, ref: { in: OwnedRef['in']; field: string }): unknown {
  const part = request[ref.in] as Record<string, unknown> | undefined | null;
  return part && typeof part === 'object' ? part[ref.field] : undefined;
}

/** preHandler applying the routes' declared access to `request.principal` (set by the group's auth hook). */
export function authorize(db: Db) {
  return async (request: FastifyRequest): Promise<void> => {
    const principal = request.principal;
    const rule = request.routeOptions.config.access;
    if (!principal || !rule) throw new Error(`no principal or access rule on ${request.method} ${request.routeOptions.url}`);
    if (principal.kind === 'admin') return;
    for (const ref of rule.owns ?? []) {
      const id = valueIn(request, ref);
      if (typeof id !== 'string') continue; // optional reference left out (validation already ran)
      if ((await ownerOf(db, ref.kind, id)) !== principal.ownerId) throw notFound(ref.kind, ref.field);
    }
    if (rule.ownerIn) {
      const named = valueIn(request, { in: rule.ownerIn, field: 'owner_id' });
      if (named !== undefined && named !== principal.ownerId) {
        throw forbidden('owner_id names another owner: an owner acts only for themself', 'owner_id');
      }
    }
    if (rule.adminOnly) throw forbidden('only admin may do this');
  };
}

/** Fails the boot when a route of `scope` declares no access rule, so no route can skip authorization. */
export function requireAccessRules(scope: FastifyInstance): void {
  scope.addHook('onRoute', (route) => {
    if (!route.config?.access) throw new Error(`${String(route.method)} ${route.url} declares no access rule (route config "access")`);
  });
}

/** The owner a request acts for: the owner_id it names, else the calling owner's own (admin must name one). */
export function ownerIdFor(principal: Principal | null, named: string | undefined): string {
  if (named !== undefined) return named;
  if (principal?.kind === 'owner') return principal.ownerId;
  throw badRequest('owner_id', 'owner_id: is required');
}
