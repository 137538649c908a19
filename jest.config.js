// Jest runs TypeScript through SWC (no type checking here: `npm test` runs `tsc` first).
// Jest's module system cannot require() ES modules, so ESM-only dependencies (octokit and a few
// others: "type": "module" without a "require" export) are transformed to CommonJS for tests.
const fs = require('node:fs');
const path = require('node:path');

function esmOnlyPackages(dir = path.join(__dirname, 'node_modules')) {
  const names = [];
  const check = (pkgDir, name) => {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
      if (pkg.type === 'module' && !JSON.stringify(pkg.exports ?? {}).includes('"require"')) names.push(name);
    } catch {
      // not a package
    }
  };
  if (!fs.existsSync(dir)) return names;
  for (const entry of fs.readdirSync(dir)) {
    if (entry.startsWith('.')) continue;
    if (entry.startsWith('@'))
      for (const sub of fs.readdirSync(path.join(dir, entry))) check(path.join(dir, entry, sub), `${entry}/${sub}`);
    else check(path.join(dir, entry), entry);
  }
  return names;
}
const esmPackages = esmOnlyPackages().map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.(t|j)sx?$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } }],
  },
  transformIgnorePatterns: [`/node_modules/(?!(${esmPackages.join('|')})/)`],
  globalSetup: '<rootDir>/test/helpers/global-setup.ts',
  globalTeardown: '<rootDir>/test/helpers/global-teardown.ts',
  testTimeout: 60_000,
  // Two cores here; workflow tests are I/O bound, so a few workers overlap well.
  maxWorkers: process.env.JEST_MAX_WORKERS ?? 3,
  // The Temporal SDK's native runtime can hold the process open after the last test; exit anyway.
  forceExit: true,
};
