// Lint is small on purpose: TypeScript checks types (`npm run typecheck`); this keeps the
// workflow sandbox deterministic by refusing runtime imports that do not belong in workflows/,
// and states the import boundaries between the top-level folders (test/lib/workflow-lint.test.ts).
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

/** A relative import of the top-level folder `dir` (from any depth below another top-level folder). */
const folder = (dir) => `^(\\.\\./)+${dir}(/|$)`;
// The worker's activities are the only code that touches provider tokens; the API process must
// not load them. lib/ holds what the API and the worker share, so it sits below both.
const WHY_ACTIVITIES = 'activities run in the worker and are the only code that touches tokens; share pure code through lib/';
const WHY_LIB = 'lib/ is shared by the API and the worker, so it depends on neither';

export default tseslint.config(
  {
    ignores: [
      'node_modules/**',
      'prisma/generated/**',
      '.tools/**',
      '.cache/**',
      'container-kit/node_modules/**',
      'bench/results/**',
      'test/artifacts/**',
    ],
  },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommended],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({ name, message: 'Workflows are deterministic: no Node APIs. Use an activity.' })),
          patterns: [
            { group: ['@prisma/*', '**/prisma/generated/**', 'pg', 'pg-*'], message: 'No database access in workflows: use an activity.' },
            { group: ['fastify', 'fastify-*', '@fastify/*'], message: 'No HTTP server code in workflows.' },
            {
              group: ['@temporalio/client', '@temporalio/worker', '@temporalio/activity', '@temporalio/testing'],
              message: 'Workflows import only @temporalio/workflow and @temporalio/common.',
            },
            {
              group: ['**/activities', '**/activities/**', '**/lib/**', '**/api/**'],
              allowTypeImports: true,
              message: 'Workflows import activities (and other service code) as types only.',
            },
            { group: ['@octokit/*', 'zod', 'undici', 'node-fetch', 'axios'], message: 'No I/O libraries in workflows.' },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'setInterval', message: 'Use workflow timers (sleep/condition).' },
        { name: 'process', message: 'No process in workflows.' },
      ],
      // The worker preloads these modules once and shares them between runs (workflowBundleOptions):
      // module-level state would leak from one dispatch's run into the next.
      'no-restricted-syntax': [
        'error',
        ...[
          ':matches(Program, Program > ExportNamedDeclaration) > VariableDeclaration[kind!="const"]',
          'Program > ExpressionStatement > AssignmentExpression',
          ':matches(Program, Program > ExportNamedDeclaration) > VariableDeclaration > VariableDeclarator > NewExpression[callee.name=/^(Map|Set|WeakMap|WeakSet|Array)$/]',
        ].map((selector) => ({
          selector,
          message: 'Workflow modules are shared by every run: no module-level state (keep it inside the workflow function).',
        })),
      ],
    },
  },
  {
    files: ['api/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        { patterns: [{ regex: folder('activities'), message: `Boundary: api/ must not import activities/ (${WHY_ACTIVITIES}).` }] },
      ],
    },
  },
  {
    files: ['lib/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: folder('api'), message: `Boundary: lib/ must not import api/ (${WHY_LIB}).` },
            { regex: folder('activities'), message: `Boundary: lib/ must not import activities/ (${WHY_LIB}).` },
          ],
        },
      ],
    },
  },
);
