// The API docs: /docs/json is an OpenAPI 3 document generated from the zod route schemas, with
// every contract route and no secret-looking field in any response except the two the contract
// hands out; /docs is a browsable page whose assets all come from our own origin.
import { startHarness, type Harness } from '../helpers/harness';

type Json = Record<string, unknown>;
interface Operation {
  parameters?: Array<{ name: string; in: string; required?: boolean; schema?: Json }>;
  requestBody?: { content: Record<string, { schema: Json }> };
  responses: Record<string, { description?: string; content?: Record<string, { schema: Json }> }>;
  security?: Array<Record<string, string[]>>;
}

/** Every route the contract names, as OpenAPI paths. (POST /login is an HTML form, kept out of the API docs.) */
const CONTRACT_ROUTES = [
  'get /healthz',
  'get /metrics',
  'post /api/towns',
  'get /api/towns/{town_id}',
  'put /api/towns/{town_id}/git-auth',
  'post /api/integrations',
  'get /api/integrations',
  'get /api/integrations/{integration_id}/repositories',
  'post /api/towns/{town_id}/rigs',
  'get /api/rigs/{rig_id}',
  'patch /api/rigs/{rig_id}',
  'post /api/rigs/{rig_id}/dispatches',
  'get /api/dispatches/{dispatch_id}',
  'post /api/dispatches/{dispatch_id}/stop',
  'get /api/dispatches/{dispatch_id}/events',
  'post /api/internal/rigs/{rig_id}/git-token',
  'get /integrations/github/install',
  'get /integrations/github/setup',
  'get /integrations/gitlab/connect',
  'get /integrations/gitlab/callback',
  'post /webhooks/github',
  'post /api/owners/{owner_id}/tokens',
  'get /api/owners/{owner_id}/tokens',
  'delete /api/owners/{owner_id}/tokens/{token_id}',
  'post /api/owners/{owner_id}/sign-in-links',
];

/** Response fields allowed to carry a secret: the pull's token and the once-shown container and owner API tokens. */
const SECRET_ALLOWED = new Set([
  'post /api/internal/rigs/{rig_id}/git-token 200 token',
  'post /api/rigs/{rig_id}/dispatches 201 container_token',
  'post /api/owners/{owner_id}/tokens 201 token',
]);
const SECRET_NAME = /(^|_)(token|secret|password|private_?key|key|credentials?)$/i;

let h: Harness;
let doc: Json & {
  openapi: string;
  info: Json;
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, Json>; securitySchemes?: Json };
};

beforeAll(async () => {
  h = await startHarness({ worker: false });
  const res = await fetch(`${h.url}/docs/json`);
  expect(res.status).toBe(200);
  doc = (await res.json()) as typeof doc;
});
afterAll(async () => h?.close());

function resolve(node: Json): Json {
  const ref = node.$ref;
  if (typeof ref !== 'string') return node;
  const target = ref
    .replace(/^#\//, '')
    .split('/')
    .reduce<unknown>((acc, key) => (acc as Json | undefined)?.[key], doc);
  if (!target) throw new Error(`unresolved $ref ${ref}`);
  return resolve(target as Json);
}

/** Every property path in a JSON schema (refs followed, arrays entered, unions walked). */
function propertyNames(schema: Json, prefix = '', out: string[] = [], depth = 0): string[] {
  if (depth > 12) return out;
  const s = resolve(schema);
  for (const [name, child] of Object.entries((s.properties as Record<string, Json>) ?? {})) {
    out.push(prefix + name);
    propertyNames(child, `${prefix}${name}.`, out, depth + 1);
  }
  if (s.items) propertyNames(s.items as Json, prefix, out, depth + 1);
  for (const k of ['anyOf', 'oneOf', 'allOf']) for (const sub of (s[k] as Json[]) ?? []) propertyNames(sub, prefix, out, depth + 1);
  return out;
}

const operations = () =>
  Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({ key: `${method} ${path}`, path, method, op })),
  );
const jsonSchema = (op: Operation, status: string) => resolve(op.responses[status]?.content?.['application/json']?.schema ?? {});

it('is a structurally valid OpenAPI 3 document: versions, operations, path parameters, refs, security', () => {
  expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
  expect(typeof doc.info.title).toBe('string');
  expect(typeof doc.info.version).toBe('string');
  const schemes = Object.keys(doc.components?.securitySchemes ?? {});
  for (const { key, path, op } of operations()) {
    expect([key, Object.keys(op.responses).length > 0]).toEqual([key, true]);
    for (const [status, response] of Object.entries(op.responses)) {
      expect([key, status, /^([1-5]\d\d|default)$/.test(status), typeof response.description]).toEqual([key, status, true, 'string']);
      for (const media of Object.values(response.content ?? {})) resolve(media.schema); // throws on a dangling $ref
    }
    // Every {param} in the path is declared as a required path parameter, and nothing more.
    const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
    const declared = (op.parameters ?? []).filter((p) => p.in === 'path');
    expect([key, declared.map((p) => p.name).sort()]).toEqual([key, templated]);
    for (const p of declared) expect([key, p.name, p.required]).toEqual([key, p.name, true]);
    for (const p of op.parameters ?? [])
      expect([key, p.name, ['path', 'query', 'header', 'cookie'].includes(p.in)]).toEqual([key, p.name, true]);
    for (const requirement of op.security ?? []) for (const name of Object.keys(requirement)) expect(schemes).toContain(name);
  }
  expect(JSON.stringify(doc)).not.toMatch(/"\$ref":"(?!#\/components\/)/); // no external refs
});

it('lists every contract route', () => {
  const present = new Set(operations().map((o) => o.key));
  expect(CONTRACT_ROUTES.filter((r) => !present.has(r))).toEqual([]);
});

it('documents request and response schemas of the token routes and the auth each route needs', () => {
  const dispatchCreate = doc.paths['/api/rigs/{rig_id}/dispatches'].post;
  const body = resolve(dispatchCreate.requestBody!.content['application/json'].schema);
  expect(body.required).toEqual(['container_url']);
  const created = jsonSchema(dispatchCreate, '201');
  expect(Object.keys(created.properties as Json).sort()).toEqual(['container_token', 'dispatch_id', 'workflow_id']);
  expect(dispatchCreate.security).toEqual([{ adminBearer: [] }, { ownerBearer: [] }]);
  expect(doc.paths['/api/owners/{owner_id}/sign-in-links'].post.security).toEqual([{ adminBearer: [] }]);

  const status = jsonSchema(doc.paths['/api/dispatches/{dispatch_id}'].get, '200');
  const statusEnum = resolve((status.properties as Record<string, Json>).status).enum;
  expect(statusEnum).toEqual(['starting', 'active', 'degraded', 'credential_error', 'stopped', 'container_unreachable']);
  expect(propertyNames(status)).toEqual(
    expect.arrayContaining(['generation', 'token_expires_at', 'refreshed_at', 'last_error.code', 'last_error.message', 'last_error.at']),
  );

  const pullRoute = doc.paths['/api/internal/rigs/{rig_id}/git-token'].post;
  expect(Object.keys(jsonSchema(pullRoute, '200').properties as Json).sort()).toEqual(['expires_at', 'generation', 'token', 'username']);
  expect(Object.keys(pullRoute.responses)).toEqual(expect.arrayContaining(['200', '401', '403', '410']));
  expect(pullRoute.security).toEqual([{ containerBearer: [] }]);

  expect(propertyNames(jsonSchema(doc.paths['/api/towns'].post, '400'))).toEqual(
    expect.arrayContaining(['error.code', 'error.message', 'error.field']),
  );
  expect(Object.keys(jsonSchema(doc.paths['/healthz'].get, '200').properties as Json).sort()).toEqual(['postgres', 'temporal']);
  expect(Object.keys(doc.paths['/metrics'].get.responses['200'].content ?? {})).toEqual(['text/plain']);
  for (const [path, method] of [
    ['/api/towns/{town_id}/git-auth', 'put'],
    ['/api/integrations', 'post'],
    ['/api/towns/{town_id}/rigs', 'post'],
    ['/api/rigs/{rig_id}', 'patch'],
  ]) {
    expect([path, doc.paths[path][method].requestBody?.content['application/json']?.schema !== undefined]).toEqual([path, true]);
  }
});

it('has no secret-looking field in any response schema except the pulled token and the once-shown tokens', () => {
  const offenders: string[] = [];
  for (const { key, op } of operations()) {
    for (const [status, response] of Object.entries(op.responses)) {
      for (const media of Object.values(response.content ?? {})) {
        for (const name of propertyNames(media.schema)) {
          const leaf = name.split('.').pop()!;
          if (SECRET_NAME.test(leaf) && !SECRET_ALLOWED.has(`${key} ${status} ${name}`)) offenders.push(`${key} ${status} ${name}`);
        }
      }
    }
  }
  expect(offenders).toEqual([]);
  // The check has teeth: it sees the allowed fields.
  const seen = operations().flatMap(({ key, op }) =>
    Object.entries(op.responses).flatMap(([status, r]) =>
      propertyNames(r.content?.['application/json']?.schema ?? {}).map((n) => `${key} ${status} ${n}`),
    ),
  );
  expect(seen).toEqual(expect.arrayContaining([...SECRET_ALLOWED]));
});

it('serves a browsable page at /docs whose scripts, styles and spec all load from the same origin', async () => {
  const res = await fetch(`${h.url}/docs`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/html/);
  const csp = res.headers.get('content-security-policy') ?? '';
  expect(csp).toMatch(/default-src 'self'/);
  expect(csp).toMatch(/script-src 'self'(;|$)/);
  expect(csp).not.toMatch(/upgrade-insecure-requests|https:/);
  const html = await res.text();
  const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
  expect(assets.length).toBeGreaterThanOrEqual(3);
  expect(assets.filter((a) => /^(https?:)?\/\//.test(a))).toEqual([]); // nothing from another origin
  expect(assets).toEqual(
    expect.arrayContaining([expect.stringMatching(/swagger-ui-bundle\.js$/), expect.stringMatching(/swagger-ui\.css$/)]),
  );
  for (const asset of assets) {
    const a = await fetch(new URL(asset, `${h.url}/docs`));
    expect([asset, a.status]).toEqual([asset, 200]);
    await a.arrayBuffer();
  }
  const init = await (await fetch(`${h.url}/docs/static/swagger-initializer.js`)).text();
  expect(init).toMatch(/resolveUrl\('\.\/json'\)/); // the spec comes from /docs/json on this origin
  expect(init).toMatch(/validatorUrl: null/); // swagger-ui's online validator would call out
});
