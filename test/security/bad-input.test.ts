// Bad input over every JSON body field the API documents (GET /docs/json), generated from the
// OpenAPI document so routes added later are covered without touching this file: NUL bytes, lone
// surrogates, wrong types, strings past their bound and 100 kB strings each get a 4xx naming the
// field, and nothing is written. Unicode that is merely unusual (RTL, zero-width, emoji) is never a
// 5xx, and a town named with it reads back exactly as sent.
import { randomUUID } from 'node:crypto';
import { newOwner, startHarness, type Harness } from '../helpers/harness';

interface Schema {
  type?: string;
  format?: string;
  pattern?: string;
  enum?: unknown[];
  nullable?: boolean;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maxItems?: number;
  minItems?: number;
  items?: Schema;
  properties?: Record<string, Schema>;
  required?: string[];
  oneOf?: Schema[];
  anyOf?: Schema[];
  $ref?: string;
}

interface Operation {
  method: string;
  path: string;
  body: Schema;
}

interface Field {
  path: string[];
  schema: Schema;
}

let h: Harness;
let doc: {
  paths: Record<string, Record<string, { requestBody?: { content?: Record<string, { schema: Schema }> } }>>;
  components?: { schemas?: Record<string, Schema> };
};
let tables: string[];
/** Real resources for path parameters, so input that passes validation reaches the service. */
const ids: Record<string, string> = {};
/** The valid body each operation's bad values are put into (found by the first test). */
const bases = new Map<Operation, unknown>();
let ops: Operation[] = [];

beforeAll(async () => {
  h = await startHarness({ worker: false });
  doc = (await (await fetch(`${h.url}/docs/json`)).json()) as typeof doc;
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
  ops = operations();
});
afterAll(() => h?.close());

const resolve = (s: Schema): Schema => (s.$ref ? resolve(doc.components!.schemas![s.$ref.split('/').pop()!]) : s);

function operations(): Operation[] {
  const ops: Operation[] = [];
  for (const [path, methods] of Object.entries(doc.paths))
    for (const [method, op] of Object.entries(methods)) {
      const schema = op.requestBody?.content?.['application/json']?.schema;
      if (!schema) continue;
      const body = resolve(schema);
      for (const branch of body.oneOf ?? body.anyOf ?? [body]) ops.push({ method: method.toUpperCase(), path, body: resolve(branch) });
    }
  return ops;
}

// Marks every example string of this run, so "rows that mention the request" are this file's alone
// (other test files write at the same time, git.example.com and all).
const RUN = randomUUID().slice(0, 8);

/** Strings that satisfy common patterns; the first one a field's pattern and bounds accept is used. */
const STRING_CANDIDATES = [`https://git.example.com/acme/app-${RUN}.git`, `git-${RUN}.example.com`, `bad-input-${RUN}`, 'main', 'abc', 'a'];

/** A value the schema accepts (required properties only). */
function valid(s: Schema): unknown {
  s = resolve(s);
  if (s.oneOf ?? s.anyOf) return valid((s.oneOf ?? s.anyOf)![0]);
  if (s.enum) return s.enum[0];
  switch (s.type) {
    case 'string': {
      if (s.format === 'uuid') return randomUUID();
      if (s.format === 'date-time') return new Date(Date.now() + 3600_000).toISOString();
      if (s.format === 'uri') return 'https://example.com';
      const fits = (v: string) =>
        (!s.pattern || new RegExp(s.pattern, 'u').test(v)) && v.length >= (s.minLength ?? 0) && v.length <= (s.maxLength ?? Infinity);
      const found = STRING_CANDIDATES.find(fits);
      if (found === undefined) throw new Error(`no example string fits ${JSON.stringify(s)}: add one to STRING_CANDIDATES`);
      return found;
    }
    case 'integer':
    case 'number':
      return (s.minimum ?? 0) + 1;
    case 'boolean':
      return true;
    case 'array':
      return Array.from({ length: Math.max(1, s.minItems ?? 0) }, () => valid(s.items!));
    case 'object':
      return Object.fromEntries((s.required ?? []).map((k) => [k, valid(s.properties![k])]));
    default:
      throw new Error(`cannot make an example of ${JSON.stringify(s)}`);
  }
}

/**
 * A body that passes validation: the required properties, or with one optional property added when
 * the service needs it (a rig needs a git URL or an integration). Which statuses the service then
 * gives (201, 404, 409, 422) is not this test's business.
 */
async function baseBody(op: Operation): Promise<unknown> {
  const required = valid(op.body) as Record<string, unknown>;
  const optional = Object.keys(op.body.properties ?? {}).filter((k) => !(k in required));
  for (const extra of [undefined, ...optional]) {
    const body = extra ? { ...required, [extra]: valid(op.body.properties![extra]) } : required;
    const { res } = await send(op, body);
    if (res.status !== 400 && res.status < 500) return body;
  }
  throw new Error(`no schema-valid example for ${op.method} ${op.path}: extend valid() or STRING_CANDIDATES`);
}

/** Every field of a body schema, nested ones by their dotted path (array items as `.0`). */
function fields(s: Schema, path: string[] = []): Field[] {
  s = resolve(s);
  if (s.type === 'object' && s.properties)
    return Object.entries(s.properties).flatMap(([k, child]) => [
      { path: [...path, k], schema: resolve(child) },
      ...fields(child, [...path, k]),
    ]);
  if (s.type === 'array' && s.items) return fields(s.items, [...path, '0']);
  return [];
}

function setAt(body: unknown, path: string[], value: unknown): unknown {
  const copy = structuredClone(body) as Record<string, unknown>;
  let node: Record<string, unknown> = copy;
  path.slice(0, -1).forEach((k, i) => {
    if (node[k] === undefined) node[k] = /^\d+$/.test(path[i + 1]) ? [] : {};
    node = node[k] as Record<string, unknown>;
  });
  node[path[path.length - 1]] = value;
  return copy;
}

/** What a field of this schema must refuse: label, value, status and the field the answer names (default: the field). */
function badValues(s: Schema): Array<{ label: string; value: unknown; status: number; field?: (name: string) => string | undefined }> {
  // A union (a numeric id may come as digits in a string) accepts each of its branches' types.
  const types = s.enum ? ['enum'] : (s.anyOf ?? s.oneOf ?? [s]).map((b) => resolve(b).type);
  const type = types.join(' or ');
  const candidates: Array<[string, unknown]> = [
    ['a number', 12345],
    ['a boolean', true],
    ['an object', { x: 1 }],
    ['an array', ['x']],
    ['a string', 'not-a-valid-value'],
  ];
  if (!s.nullable) candidates.push(['null', null]);
  const sameType = (v: unknown) =>
    (types.includes('string') && typeof v === 'string') ||
    ((types.includes('integer') || types.includes('number')) && typeof v === 'number') ||
    (types.includes('array') && Array.isArray(v)) ||
    (types.includes('object') && typeof v === 'object' && v !== null && !Array.isArray(v));
  const out: ReturnType<typeof badValues> = candidates
    .filter(([, v]) => !sameType(v))
    .map(([label, value]) => ({ label: `${label} where ${type ?? 'a value'} belongs`, value, status: 400 }));
  if (types.includes('string') || types.includes('enum')) {
    out.push({ label: 'a NUL byte', value: 'bad\u0000value', status: 400 });
    out.push({ label: 'a lone surrogate', value: 'bad\ud800value', status: 400 });
    // Past the 64 KiB body limit, refused before the body is read: no field can be named yet.
    out.push({ label: 'a 100 kB string', value: 'x'.repeat(100_000), status: 413, field: () => undefined });
  }
  if (types.includes('string') && s.maxLength !== undefined)
    out.push({ label: `a string of maxLength + 1 (${s.maxLength + 1})`, value: 'a'.repeat(s.maxLength + 1), status: 400 });
  if (types.includes('integer') || types.includes('number'))
    out.push({ label: 'a fraction', value: 1.5, status: 400 }, { label: 'a negative number', value: -1, status: 400 });
  if (types.includes('array')) out.push({ label: 'an array of a bad item', value: [12345], status: 400, field: (name) => `${name}.0` });
  return out;
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
      fields(op.body)
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
      for (const field of fields(op.body)) {
        for (const { label, value, status, field: namesField } of badValues(field.schema)) {
          cases++;
          const name = field.path.join('.');
          const { res, before, after } = await send(op, setAt(base, field.path, value));
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
      for (const field of fields(op.body).filter((f) => f.schema.type === 'string' && !f.schema.enum)) {
        for (const value of UNUSUAL) {
          const { res, before, after } = await send(op, setAt(base, field.path, value));
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
