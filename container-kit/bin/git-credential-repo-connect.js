#!/usr/bin/env node
// @ts-check
'use strict';
// git runs this as `git-credential-repo-connect <operation>` with the request on stdin.
const { readRequest, runCredentialHelper } = require('../lib/credential-helper');

// git appends the operation as the last argument (after any the user configured).
const operation = process.argv.length > 2 ? process.argv[process.argv.length - 1] : undefined;

readRequest(process.stdin)
  .then((input) => runCredentialHelper({ operation, input, env: process.env }))
  .then(
    (out) => {
      process.stdout.write(out.stdout);
      process.stderr.write(out.stderr);
    },
    () => process.stderr.write('git-credential-repo-connect: internal error\n'),
  )
  .finally(() => {
    // Always 0: an empty answer is how a helper says "no credential" (see lib/credential-helper.js).
    process.exitCode = 0;
  });
