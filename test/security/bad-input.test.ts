// Bad input over every JSON body field the API documents (GET /docs/json), generated from the
// OpenAPI document so routes added later are covered without touching this file: NUL bytes, lone
// surrogates, wrong types, strings past their bound and 100 kB strings each get a 4xx naming the
// field, and nothing is written. Unicode that is merely unusual (RTL, zero-width, emoji) is never a
// 5xx, and a town named with it reads back exactly as sent.
import { randomUUID } from 'node:crypto';
import { newOwner, startHarness, type Harness } from '../helpers/harness';
import { openApiBodies, type OpenApiDocument, type Operation } from '../helpers/openapi-bodies';

let h: Harness;
let bodies: ReturnType<typeof openApiBodies>;
let tables: string[];
/** Real resources for path parameters, so input that passes validation reaches the service. */
const ids: Record<string, string> = {};
/** The valid body each operation's bad values are put into (found by the first test). */
const bases = new Map<Operation, unknown>();
let ops: Operation[] = [];

beforeAll(async () => {
  h = await startHarness({ worker: false });
  bodies = openApiBodies((await (await fetch(`${h.url}/docs/json`)).json()) as OpenApiDocument, STRING_CANDIDATES);
  const town = await h.call<{ id: string }>('POST', '/api/towns', { name: 'bad input', owner_id: newOwner() });
  const rig = await h.call<{ id: string }>('POST', `/api/towns/${town.body.id}/rigs`, {
    name: 'r',
    git_url: 'https://git.example.com/a/b.git',
  });
  ids.town_id = town.body.id;
  ids.rig_id = rig.body.id;
  const rows = await h.core.db.$queryRawUnsafe<Array<{ tablename: string }>>(
    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> '_prisma_migrations' ORDER BY tablename",
  );
  tables = rows.map((r) => r.tablename);
  ops = bodies.operations();
});
afterAll(() => h?.close());

// Marks every example string of this run, so "rows that mention the request" are this file's alone
// (other test files write at the same time, git.example.com and all).
const RUN = randomUUID().slice(0, 8);

/** Strings that satisfy common patterns; the first one a field's pattern and bounds accept is used. */
const STRING_CANDIDATES = [`https://git.example.com/acme/app-${RUN}.git`, `git-${RUN}.example.com`, `bad-input-${RUN}`, 'main', 'abc', 'a'];

/**
 * A body that passes validation: the required properties, or with one optional property added when
 * the service needs it (a rig needs a git URL or an integration). Which statuses the service then
 * gives (201, 404, 409, 422) is not this test's business.
 */
async function baseBody(op: Operation): Promise<unknown> {
  const required = bodies.valid(op.body) as Record<string, unknown>;
  const optional = Object.keys(op.body.properties ?? {}).filter((k) => !(k in required));
  for (const extra of [undefined, ...optional]) {
    const body = extra ? { ...required, [extra]: bodies.valid(op.body.properties![extra]) } : required;
    const { res } = await send(op, body);
    if (res.status !== 400 && res.status < 500) return body;
  }
  throw new Error(
    `no schema-valid example for ${op.method} ${op.path}: extend valid() in test/helpers/openapi-bodies.ts or STRING_CANDIDATES`,
  );
}

/** Fingerprint of every row that mentions any of `needles` (ids and values the request named), across all tables. */
async function written(needles: string[]): Promise<string> {
  const sql = tables
    .map(
      (t) =>
        `SELECT '${t}' AS t, md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) AS h, count(*)::int AS n FROM "${t}" x WHERE EXISTS (SELECT 1 FROM unnest($1::text[]) n WHERE position(n IN x::text) > 0)`,
    )
    .join(' UNION ALL ');
  const rows = await h.core.db.$queryRawUnsafe<Array<{ t: string; h: string; n: number }>>(sql, needles);
  return rows.map((r) => `${r.t}:${r.n}:${r.h}`).join(' ');
}

/** The strings of a body that only this run can have written: ids, and example strings marked with RUN. */
function stringsIn(v: unknown): string[] {
  if (typeof v === 'string') return /^[0-9a-f-]{36}$/.test(v) || v.includes(RUN) ? [v] : [];
  if (Array.isArray(v)) return v.flatMap(stringsIn);
  if (v && typeof v === 'object') return Object.values(v).flatMap(stringsIn);
  return [];
}

async function send(op: Operation, body: unknown) {
  const params: string[] = [];
  const path = op.path.replace(/\{(\w+)\}/g, (_m, name: string) => {
    const id = ids[name] ?? randomUUID();
    params.push(id);
    return id;
  });
  const needles = [...params, ...stringsIn(body)];
  const before = await written(needles);
  const res = await h.call<{ error?: { code: string; field?: string } }>(op.method, path, body);
  return { res, needles, before, after: () => written(needles) };
}

describe('bad input over every documented body field', () => {
  it('finds the JSON bodies in the OpenAPI document, and a valid example of each', async () => {
    expect(ops.length).toBeGreaterThanOrEqual(6);
    for (const op of ops) bases.set(op, await baseBody(op));
  });

  it('bounds every string field', () => {
    const unbounded = ops.flatMap((op) =>
      bodies
        .fields(op.body)
        .filter(
          (f) =>
            f.schema.type === 'string' &&
            f.schema.maxLength === undefined &&
            !f.schema.enum &&
            // Formats whose pattern bounds them; a host's pattern starts with a length lookahead.
            !['uuid', 'date-time'].includes(f.schema.format ?? '') &&
            !f.schema.pattern?.startsWith('^(?=.{1,'),
        )
        .map((f) => `${op.method} ${op.path} ${f.path.join('.')}`),
    );
    expect(unbounded).toEqual([]);
  });

  it('answers each bad value with a 4xx naming the field, and writes nothing', async () => {
    const failures: string[] = [];
    let cases = 0;
    for (const op of ops) {
      const base = bases.get(op) ?? (await baseBody(op));
      for (const field of bodies.fields(op.body)) {
        for (const { label, value, status, field: namesField } of bodies.badValues(field.schema)) {
          cases++;
          const name = field.path.join('.');
          const { res, before, after } = await send(op, bodies.setAt(base, field.path, value));
          const code = status === 413 ? 'payload_too_large' : 'invalid_request';
          const expected = { status, code, field: namesField ? namesField(name) : name };
          const got = { status: res.status, code: res.body?.error?.code, field: res.body?.error?.field };
          if (JSON.stringify(got) !== JSON.stringify(expected))
            failures.push(`${op.method} ${op.path} ${name} ${label}: ${JSON.stringify(got)}`);
          if ((await after()) !== before) failures.push(`${op.method} ${op.path} ${name} ${label}: wrote rows`);
        }
      }
    }
    expect(failures).toEqual([]);
    expect(cases).toBeGreaterThan(100);
  });

  it('never answers unusual but valid Unicode with a 5xx, and writes nothing when it refuses', async () => {
    const UNUSUAL = ['rtl \u202Eevil\u202C', 'zero\u200Bwidth\u200D', '🚀 launch 👨‍👩‍👧', 'e\u0301 \uFEFFbom', 'עברית العربية'];
    const failures: string[] = [];
    for (const op of ops) {
      const base = bases.get(op) ?? (await baseBody(op));
      for (const field of bodies.fields(op.body).filter((f) => f.schema.type === 'string' && !f.schema.enum)) {
        for (const value of UNUSUAL) {
          const { res, before, after } = await send(op, bodies.setAt(base, field.path, value));
          const name = field.path.join('.');
          if (res.status >= 500) failures.push(`${op.method} ${op.path} ${name} ${JSON.stringify(value)}: ${res.status}`);
          if (res.status >= 400 && (await after()) !== before)
            failures.push(`${op.method} ${op.path} ${name}: ${res.status} but wrote rows`);
        }
      }
    }
    expect(failures).toEqual([]);
  });

  it('keeps a town name of emoji, RTL and zero-width characters exactly as sent', async () => {
    const name = '🚀 Gas\u200BTown \u202Eevil\u202C עברית';
    const created = await h.call<{ id: string; name: string }>('POST', '/api/towns', { name, owner_id: newOwner() });
    expect(created.status).toBe(201);
    expect((await h.call<{ name: string }>('GET', `/api/towns/${created.body.id}`)).body.name).toBe(name);
  });

  it('names the field of a NUL byte in a query string too', async () => {
    const res = await h.call<{ error: { field: string } }>('GET', `/api/integrations/${randomUUID()}/repositories?q=a%00b`);
    expect(res.status).toBe(400);
    expect(res.body.error.field).toBe('q');
  });
});
