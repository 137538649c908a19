// Who the dashboard shows as signed in: admin, or an owner with a display name and initials (the
// header draws initials rather than loading an avatar from GitHub or GitLab, so the page's policy
// keeps images on our own origin).
import type { FastifyRequest } from 'fastify';
import type { Services } from '../services';

export type Viewer = { kind: 'admin' } | { kind: 'owner'; ownerId: string; name: string };

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the dashboard group's preHandler for the page header. */
    viewer: Viewer | null;
  }
}

/** A name to show for an owner: their display name, else their first account's login, else a short id. */
export function ownerName(owner: { id: string; display_name: string | null; logins: Array<{ login: string }> } | null, id: string): string {
  return owner?.display_name ?? owner?.logins[0]?.login ?? `Owner ${id.slice(0, 8)}`;
}

/** Up to two letters for the header's avatar. */
export function initials(name: string): string {
  const words = name
    .replace(/[^\p{L}\p{N}\s]/gu, ' ')
    .split(/\s+/)
    .filter(Boolean);
  const letters = words.length > 1 ? words[0][0] + words[words.length - 1][0] : (words[0] ?? '?').slice(0, 2);
  return letters.toUpperCase();
}

/** preHandler of the dashboard pages: loads the viewer for the header (one small query for owners). */
export function viewerHook(services: Services) {
  return async (request: FastifyRequest): Promise<void> => {
    const p = request.principal;
    if (!p) return;
    if (p.kind === 'admin') request.viewer = { kind: 'admin' };
    else request.viewer = { kind: 'owner', ownerId: p.ownerId, name: ownerName(await services.owners.get(p.ownerId), p.ownerId) };
  };
}
