import { type Logger, type LoggerOptions, pino } from 'pino';

export type { Logger };

/**
 * pino JSON to stdout. Keys and client IPs are redacted by fixed paths: a write key in a header or
 * an IP in a logged event must never reach the log store.
 */
export function createLogger(name: string, level = 'info', options: LoggerOptions = {}): Logger {
  return pino({
    name,
    level,
    redact: {
      paths: [
        'req.headers.authorization',
        'headers.authorization',
        'writeKey',
        'write_key',
        '*.client_ip',
        'client_ip',
        'req.remoteAddress',
      ],
      censor: '[redacted]',
    },
    ...options,
  });
}
