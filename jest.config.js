// Jest runs TypeScript through SWC (no type checking here: `npm test` runs `tsc` first).
// octokit ships ESM only, so those packages are transformed to CommonJS for Jest's module system.
const esmPackages = [
  '@octokit',
  'universal-user-agent',
  'universal-github-app-jwt',
  'before-after-hook',
  'toad-cache',
  'fast-content-type-parse',
  'json-with-bigint',
];

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
  forceExit: false,
};
