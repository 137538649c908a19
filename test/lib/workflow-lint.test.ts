// The lint rules that keep workflows/ deterministic and the folders' import boundaries must
// actually refuse what they are meant to, naming the rule, and let allowed imports through.
// ESLint runs in a child process (its config is ESM, which Jest's module system cannot load).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const root = join(__dirname, '../..');

const cases: Array<{ file: string; code: string; expect: RegExp | null }> = [
  { file: 'workflows/a.ts', code: "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n", expect: /no Node APIs/ },
  { file: 'workflows/b.ts', code: "import { createHash } from 'crypto';\nexport const x = createHash;\n", expect: /no Node APIs/ },
  {
    file: 'workflows/c.ts',
    code: "import { PrismaClient } from '../prisma/generated/client';\nexport const x = PrismaClient;\n",
    expect: /No database access/,
  },
  { file: 'workflows/d.ts', code: "import Fastify from 'fastify';\nexport const x = Fastify;\n", expect: /No HTTP server code/ },
  {
    file: 'workflows/e.ts',
    code: "import { Client } from '@temporalio/client';\nexport const x = Client;\n",
    expect: /only @temporalio\/workflow/,
  },
  {
    file: 'workflows/f.ts',
    code: "import { createTokenActivities } from '../activities/token-activities';\nexport const x = createTokenActivities;\n",
    expect: /as types only/,
  },
  { file: 'workflows/g.ts', code: 'export const x = () => process.env.X;\n', expect: /No process in workflows/ },
  { file: 'workflows/h.ts', code: 'let runs = 0;\nexport const next = () => ++runs;\n', expect: /no module-level state/ },
  { file: 'workflows/i.ts', code: 'export let current: string | undefined;\n', expect: /no module-level state/ },
  {
    file: 'workflows/j.ts',
    code: 'const seen = new Map<string, number>();\nexport const see = (k: string) => seen.set(k, 1);\n',
    expect: /no module-level state/,
  },
  { file: 'workflows/k.ts', code: 'export const limits = { max: 1 };\nlimits.max = 2;\n', expect: /no module-level state/ },
  {
    file: 'workflows/ok.ts',
    code: "import type { createTokenActivities } from '../activities/token-activities';\nimport { sleep } from '@temporalio/workflow';\nexport type A = ReturnType<typeof createTokenActivities>;\nexport const s = sleep;\nexport function f() {\n  let n = 0;\n  const m = new Map<string, number>();\n  n += m.size;\n  return n;\n}\n",
    expect: null,
  },
  { file: 'lib/ok.ts', code: "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n", expect: null },
  {
    file: 'api/probe-a.ts',
    code: "import { classifyMintError } from '../activities/token-activities';\nexport const x = classifyMintError;\n",
    expect: /Boundary: api\/ must not import activities\/ \(activities run in the worker/,
  },
  {
    file: 'api/services/probe-b.ts',
    code: "import { defaultUsernameForHost } from '../../activities/credential-fns';\nexport const x = defaultUsernameForHost;\n",
    expect: /Boundary: api\/ must not import activities\//,
  },
  {
    // Types cross too: the API must not depend on the worker's code in any form.
    file: 'api/probe-c.ts',
    code: "import type { TokenActivities } from '../activities/token-activities';\nexport type X = TokenActivities;\n",
    expect: /Boundary: api\/ must not import activities\//,
  },
  {
    file: 'lib/probe-d.ts',
    code: "import { buildApp } from '../api/app';\nexport const x = buildApp;\n",
    expect: /Boundary: lib\/ must not import api\/ \(lib\/ is shared/,
  },
  {
    file: 'lib/providers/probe-e.ts',
    code: "import type { Services } from '../../api/services';\nexport type X = Services;\n",
    expect: /Boundary: lib\/ must not import api\//,
  },
  {
    file: 'lib/probe-f.ts',
    code: "export { createTokenActivities } from '../activities/token-activities';\n",
    expect: /Boundary: lib\/ must not import activities\//,
  },
  {
    file: 'api/ok.ts',
    code: "import { gitHost } from '../lib/git-host';\nimport { ENDED_STATUSES } from '../workflows/git-token-types';\nimport type { Services } from './services';\nexport const x = [gitHost, ENDED_STATUSES];\nexport type S = Services;\n",
    expect: null,
  },
  {
    file: 'lib/providers/ok.ts',
    code: "import type { FailureCode } from '../../workflows/failure-types';\nimport type { Config } from '../config';\nimport { trace } from '@opentelemetry/api';\nexport type X = [FailureCode, Config];\nexport const t = trace;\n",
    expect: null,
  },
];

const script = `
const { ESLint } = require('eslint');
(async () => {
  const eslint = new ESLint({ cwd: ${JSON.stringify(root)} });
  const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));
  const out = [];
  for (const c of cases) {
    const [r] = await eslint.lintText(c.code, { filePath: c.file });
    out.push(r.messages.map((m) => m.message).join('\\n'));
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(2); });
`;

let messages: string[];
beforeAll(() => {
  const r = spawnSync(process.execPath, ['-e', script], { cwd: root, input: JSON.stringify(cases), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`eslint failed: ${r.stderr}`);
  messages = JSON.parse(r.stdout);
});

describe('lint: workflow determinism and folder boundaries', () => {
  it.each(cases.map((c, i) => [c.file, c.expect, i] as const))('%s → %s', (_file, expected, i) => {
    if (expected === null) expect(messages[i]).toBe('');
    else expect(messages[i]).toMatch(expected);
  });
});
