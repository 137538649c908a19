// One guard for every string that arrives, whatever route it goes to (routes added later too): a
// NUL byte (Postgres refuses it in text and jsonb, which made a 500 of bad input) or a lone UTF-16
// surrogate (it would be stored as U+FFFD, silently not what was sent) is a 400 naming the field.
import type { FastifyRequest } from 'fastify';
import { badRequest } from './errors';

// With the u flag a surrogate range matches only unpaired halves: emoji pass.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** Why `s` cannot be stored as text, or null. */
function stringProblem(s: string): string | null {
  if (s.includes('\u0000')) return 'must not contain a NUL byte';
  if (LONE_SURROGATE.test(s)) return 'must be well-formed Unicode (it contains a lone surrogate)';
  return null;
}

/**
 * The dotted path and problem of the first unstorable string in `value` (keys included), or null.
 * Iterative, so a deeply nested body cannot exhaust the stack.
 */
export function findBadString(value: unknown): { path: string; problem: string } | null {
  const stack: Array<[unknown, string[]]> = [[value, []]];
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (typeof v === 'string') {
      const problem = stringProblem(v);
      if (problem) return { path: path.join('.'), problem };
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], [...path, String(i)]]);
    } else if (v !== null && typeof v === 'object' && !Buffer.isBuffer(v)) {
      const entries = Object.entries(v);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, child] = entries[i];
        const problem = stringProblem(key);
        if (problem) return { path: path.join('.'), problem: `a key ${problem}` };
        stack.push([child, [...path, key]]);
      }
    }
  }
  return null;
}

/** preValidation hook (registered once, on the root): params, query and body, in that order. */
export async function rejectUnstorableStrings(request: FastifyRequest): Promise<void> {
  for (const [part, value] of [
    ['params', request.params],
    ['querystring', request.query],
    ['body', request.body],
  ] as const) {
    const bad = findBadString(value);
    if (!bad) continue;
    const field = bad.path || part;
    throw badRequest(field, `${field}: ${bad.problem}`);
  }
}
