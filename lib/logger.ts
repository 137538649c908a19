// Structured logs (pino) with redaction: authorization headers, cookies, tokens and keys are
// censored wherever they appear in a logged object, so a careless log line cannot leak one.
import pino, { type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/** Paths pino censors; `*` matches one level, so common nestings are listed. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'authorization',
  'token',
  'access_token',
  'refresh_token',
  'container_token',
  'privateKey',
  'private_key',
  'password',
  '*.token',
  '*.access_token',
  '*.refresh_token',
  '*.container_token',
  '*.privateKey',
  '*.private_key',
  '*.password',
  '*.authorization',
  'body.token',
  'body.tokens[*].token',
  'err.config.headers.authorization',
  'err.request.headers.authorization',
];

/** pino options shared by the API (Fastify's logger) and the worker. */
export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { service: 'repo-connect' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
}

/** A logger for code outside Fastify (worker, tooling). `destination` defaults to stdout. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return destination ? pino(loggerOptions(level), destination) : pino(loggerOptions(level));
}
