// The re-encryption's statements find rows by primary key: a rewrite per row that scanned its
// table made a rotation quadratic in the number of rows (every dispatch ever made).
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { columnStatements, SECRET_COLUMNS } from '../../lib/reencrypt';
import { testDatabaseUrl } from '../helpers/test-env';

let db: Client;

beforeAll(async () => {
  db = new Client({ connectionString: testDatabaseUrl() });
  await db.connect();
  // The planner picks a sequential scan of a small table anyway; with it off, only a statement
  // that cannot use the index still scans.
  await db.query('SET enable_seqscan = off');
});
afterAll(async () => {
  await db?.end();
});

/** The node types of the plan Postgres makes for `sql` with `params`. */
async function planNodes(sql: string, params: unknown[]): Promise<string[]> {
  const name = `plan_${randomUUID().replace(/-/g, '')}`;
  await db.query(`PREPARE ${name} AS ${sql}`);
  try {
    const literals = params.map((p) => `'${String(p)}'`).join(', ');
    const { rows } = await db.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(`EXPLAIN (FORMAT JSON) EXECUTE ${name}(${literals})`);
    const out: string[] = [];
    const walk = (n: PlanNode) => {
      out.push(n['Node Type']);
      for (const c of n.Plans ?? []) walk(c);
    };
    walk(rows[0]['QUERY PLAN'][0].Plan);
    return out;
  } finally {
    await db.query(`DEALLOCATE ${name}`);
  }
}
interface PlanNode {
  'Node Type': string;
  Plans?: PlanNode[];
}

it.each(SECRET_COLUMNS.map((c) => [`${c.table}.${c.column}`, c] as const))(
  '%s: a batch and a rewrite go by the primary key',
  async (_name, c) => {
    const sql = columnStatements(c);
    const rewrite = await planNodes(sql.rewrite, ['v1:new:x', 'v1:old:x', ...c.key.map(() => randomUUID())]);
    expect(rewrite).not.toContain('Seq Scan');
    expect(rewrite.some((n) => n.startsWith('Index'))).toBe(true);
    const batch = await planNodes(sql.batch(500), ['newkey', '00000000-0000-0000-0000-000000000000']);
    expect(batch).not.toContain('Seq Scan');
  },
);
