// The request bodies an OpenAPI document describes, walked generically: every JSON body (each
// branch of a union), a value each schema accepts, every field by its dotted path, and the values a
// field of each type must refuse. Used by test/security/bad-input.test.ts.
import { randomUUID } from 'node:crypto';

export interface Schema {
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

export interface Operation {
  method: string;
  path: string;
  body: Schema;
}

export interface Field {
  path: string[];
  schema: Schema;
}

export interface OpenApiDocument {
  paths: Record<string, Record<string, { requestBody?: { content?: Record<string, { schema: Schema }> } }>>;
  components?: { schemas?: Record<string, Schema> };
}

/** A bad value for a field: what to send, the status it must get and the field the answer names (default: the field). */
export interface BadValue {
  label: string;
  value: unknown;
  status: number;
  field?: (name: string) => string | undefined;
}

/** The body walkers over one document; `candidates` are strings tried, in order, for string fields. */
export function openApiBodies(doc: OpenApiDocument, candidates: string[]) {
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
        const found = candidates.find(fits);
        if (found === undefined) throw new Error(`no example string fits ${JSON.stringify(s)}: add one to candidates`);
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
  function badValues(s: Schema): BadValue[] {
    // A union (a numeric id may come as digits in a string) accepts each of its branches' types.
    const types = s.enum ? ['enum'] : (s.anyOf ?? s.oneOf ?? [s]).map((b) => resolve(b).type);
    const type = types.join(' or ');
    const wrongValues: Array<[string, unknown]> = [
      ['a number', 12345],
      ['a boolean', true],
      ['an object', { x: 1 }],
      ['an array', ['x']],
      ['a string', 'not-a-valid-value'],
    ];
    if (!s.nullable) wrongValues.push(['null', null]);
    const sameType = (v: unknown) =>
      (types.includes('string') && typeof v === 'string') ||
      ((types.includes('integer') || types.includes('number')) && typeof v === 'number') ||
      (types.includes('array') && Array.isArray(v)) ||
      (types.includes('object') && typeof v === 'object' && v !== null && !Array.isArray(v));
    const out: BadValue[] = wrongValues
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

  return { operations, valid, fields, setAt, badValues, resolve };
}
