#!/usr/bin/env node
// @ts-check
'use strict';
// Composition root of the push receiver: reads the environment, listens, closes on SIGTERM/SIGINT.
const { loadConfig, missingSettings, errorCode } = require('../lib/config');
const { createReceiver } = require('../lib/receiver');

const PREFIX = 'repo-connect-token-receiver: ';
// The token file is read per push, so the receiver may start before the dispatch that fills it.
const { config, problems } = loadConfig(process.env, { lazyContainerToken: true });
const needed = /** @type {Array<'rigId' | 'containerToken'>} */ (config.containerTokenFile ? ['rigId'] : ['rigId', 'containerToken']);
const missing = missingSettings(config, needed).map((v) => `${v} is required`);
if (problems.length || missing.length) {
  process.stderr.write(`${PREFIX}bad configuration: ${[...missing, ...problems].join('; ')}\n`);
  process.exit(2);
}

const receiver = createReceiver({
  rigId: /** @type {string} */ (config.rigId),
  containerToken: config.containerTokenFile ? undefined : config.containerToken,
  containerTokenFile: config.containerTokenFile,
  tokenFile: config.tokenFile,
  log: (line) => process.stdout.write(`${PREFIX}${line}\n`),
});

receiver.listen(config.receiverPort, config.receiverHost).then(
  (port) => process.stdout.write(`${PREFIX}listening on ${config.receiverHost}:${port}, writing ${config.tokenFile}\n`),
  (err) => {
    process.stderr.write(`${PREFIX}cannot listen on ${config.receiverHost}:${config.receiverPort} (${errorCode(err)})\n`);
    process.exit(1);
  },
);

let closing = false;
for (const signal of /** @type {const} */ (['SIGTERM', 'SIGINT'])) {
  process.on(signal, () => {
    if (closing) return;
    closing = true;
    process.stdout.write(`${PREFIX}${signal}: finishing in-flight pushes\n`);
    // A push stuck mid-request must not keep the container from stopping.
    setTimeout(() => process.exit(0), 5_000).unref();
    receiver.close().then(() => process.exit(0));
  });
}
