/**
 * Retrying an infrastructure call (a look-up, a dead-letter send, the start-up schema check) with
 * the sink's backoff until it succeeds, the caller's `giveUp` says the failure is not an outage, or
 * shutdown aborts. Retrying has no count limit: the callers hold offsets that must not be committed
 * before the call went through, so giving up on an outage would mean losing events.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { classifyClickHouseError } from '../lib/clickhouse.ts';
import type { Logger } from '../lib/logger.ts';
import { backoffMs, type RetryPolicy } from './sink.ts';

export interface RetryHooks {
  /** The first attempt failed: a retry loop started (pause fetching, turn unready, ...). */
  readonly onRetrying: () => void;
  /** The loop that onRetrying announced ended: succeeded, gave up, or was aborted. */
  readonly onRecovered: () => void;
  /** Every failed attempt that will be retried, by ClickHouse code ("unavailable": no answer). */
  readonly onAttemptFailed?: (code: string) => void;
}

/**
 * `retry(what, fn, giveUp)`: calls `fn` until it resolves. A failure for which `giveUp(err)` is true
 * is rethrown at once (a request the server refuses for good); when `signal` aborts, the last
 * failure is rethrown.
 */
export type Retry = <T>(what: string, fn: () => Promise<T>, giveUp?: (err: unknown) => boolean) => Promise<T>;

export function retrier(
  logger: Logger,
  policy: RetryPolicy,
  signal: AbortSignal,
  hooks?: RetryHooks,
  random: () => number = Math.random,
): Retry {
  return async (what, fn, giveUp = () => false) => {
    let retrying = false;
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          return await fn();
        } catch (err) {
          if (signal.aborted || giveUp(err)) throw err;
          if (!retrying) {
            retrying = true;
            hooks?.onRetrying();
          }
          const delayMs = backoffMs(attempt, policy, random);
          const { code } = classifyClickHouseError(err);
          hooks?.onAttemptFailed?.(code === undefined ? 'unavailable' : String(code));
          logger.warn({ err, what, attempt, delayMs, code }, `${what} failed; retrying`);
          await sleep(delayMs, undefined, { signal }).catch(() => undefined);
        }
      }
    } finally {
      if (retrying) hooks?.onRecovered();
    }
  };
}
