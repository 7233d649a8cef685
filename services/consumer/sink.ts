/**
 * Writes a batch to ClickHouse: one insert per ingest table, retried until ClickHouse acknowledges
 * it. Failures are classified by ClickHouse's numeric error code (services/lib/clickhouse.ts),
 * never by message text:
 *   - unavailable (no answer) or a retriable code: capped exponential backoff with jitter, forever,
 *     while the pipeline keeps fetching paused; the same rows are retried, so nothing is skipped.
 *   - a code that means "this data cannot be parsed or stored" (DATA_ERROR_CODES): the batch is
 *     split in halves until the rows ClickHouse refuses are isolated; those come back to the caller
 *     as rejected (dead-lettered there, with the code and message), all the others are written.
 *     Even when every row of a batch is refused: one request's events can all carry the same bad
 *     value, and retrying them would wedge the partition. What such a refusal can also mean, a
 *     table that disagrees with the row builder, is told apart by checking the schema first
 *     (`checkSchema`, once per write): on a mismatch nothing is dead-lettered and the batch is
 *     retried like an outage until the schema is fixed.
 *   - any other code (unknown table, missing column, no permission: a deployment problem): retried
 *     with backoff like an outage; dead-lettering would throw away every event for a config error.
 * Retrying has no count limit on purpose: giving up would mean committing past unwritten events.
 *
 * Rows go through `insert` (services/lib/clickhouse.ts rowInserter: TabSeparated with an explicit
 * column list), so a column the table lacks is refused (code 16, retried like any deployment
 * problem), never dropped silently.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { classifyClickHouseError, type InsertRows, redactedClickHouseMessage } from '../lib/clickhouse.ts';
import { CONSUMER_CODES } from '../lib/error-codes.ts';
import { PipelineError } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';

/** ClickHouse codes for values it cannot parse, convert or store: the rows are wrong, not the server. */
export const DATA_ERROR_CODES: ReadonlySet<number> = new Set([
  6, // CANNOT_PARSE_TEXT
  26, // CANNOT_PARSE_QUOTED_STRING
  27, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  38, // CANNOT_PARSE_DATE
  41, // CANNOT_PARSE_DATETIME
  53, // TYPE_MISMATCH
  69, // ARGUMENT_OUT_OF_BOUND
  70, // CANNOT_CONVERT_TYPE
  72, // CANNOT_PARSE_NUMBER
  117, // INCORRECT_DATA
  131, // TOO_LARGE_STRING_SIZE
  190, // SIZES_OF_ARRAYS_DOESNT_MATCH
  321, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
  349, // CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
]);

export interface RetryPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
}

/**
 * Delay before retry number `attempt` (0-based): exponential, capped, with "equal jitter" (half
 * fixed, half random) so many consumers recovering together do not hit ClickHouse in lockstep.
 */
export function backoffMs(attempt: number, p: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(p.maxMs, p.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

export interface SinkItem<S> {
  readonly row: Record<string, unknown>;
  /** Where the row came from, handed back when ClickHouse rejects it. */
  readonly source: S;
}

export interface Rejected<S> {
  readonly source: S;
  readonly code: number;
  readonly message: string;
}

export interface SinkEvents {
  readonly onInsert: (table: string, rows: number, seconds: number) => void;
  readonly onError: (table: string, code: string) => void;
  /** First failed attempt of an insert: the pipeline pauses fetching. */
  readonly onRetrying: (table: string, attempt: number, delayMs: number) => void;
  /** The insert that was being retried went through. */
  readonly onRecovered: (table: string, attempts: number) => void;
}

export interface SinkOptions {
  readonly insert: InsertRows;
  /** The columns written to `table` (schema.ts: every column the row builder makes). */
  readonly columnsOf: (table: string) => readonly string[];
  /**
   * Problems of `table` against the rows this consumer builds (schema.ts), empty when it matches;
   * asked before rows refused for their data are blamed.
   */
  readonly checkSchema: (table: string) => Promise<readonly string[]>;
  readonly logger: Logger;
  readonly retry: RetryPolicy;
  readonly events: SinkEvents;
  /** Aborted on shutdown: a retry loop stops waiting and write() rejects with CONSUMER_SINK_ABORTED. */
  readonly signal: AbortSignal;
  readonly random?: () => number;
}

export class Sink {
  private readonly o: SinkOptions;
  private readonly log: Logger;

  constructor(o: SinkOptions) {
    this.o = o;
    this.log = o.logger.child({ component: 'sink' });
  }

  /** Resolves when every row is written or rejected; rejects only when aborted. */
  async write<S>(table: string, items: readonly SinkItem<S>[]): Promise<Rejected<S>[]> {
    if (items.length === 0) return [];
    return this.writeWithRetry(table, items, { schemaMatches: false });
  }

  private async writeWithRetry<S>(
    table: string,
    items: readonly SinkItem<S>[],
    write: { schemaMatches: boolean },
  ): Promise<Rejected<S>[]> {
    for (let attempt = 0; ; attempt++) {
      this.throwIfAborted();
      const started = performance.now();
      try {
        await this.o.insert(
          table,
          this.o.columnsOf(table),
          items.map((i) => i.row),
        );
        this.o.events.onInsert(table, items.length, (performance.now() - started) / 1000);
        if (attempt > 0) {
          this.log.info({ table, attempts: attempt + 1 }, 'insert went through after retries');
          this.o.events.onRecovered(table, attempt + 1);
        }
        return [];
      } catch (err) {
        this.throwIfAborted();
        const f = classifyClickHouseError(err);
        this.o.events.onError(table, f.code === undefined ? 'unavailable' : String(f.code));
        if (
          f.code !== undefined &&
          DATA_ERROR_CODES.has(f.code) &&
          (await this.schemaMatches(table, write))
        ) {
          if (attempt > 0) this.o.events.onRecovered(table, attempt + 1);
          return this.isolate(table, items, f.code, err as Error, write);
        }
        const delayMs = backoffMs(attempt, this.o.retry, this.o.random);
        const level = f.retriable ? 'warn' : 'error';
        this.log[level](
          {
            error: redactedClickHouseMessage((err as Error).message),
            table,
            rows: items.length,
            code: f.code,
            attempt,
            delayMs,
          },
          'insert failed; retrying',
        );
        this.o.events.onRetrying(table, attempt, delayMs);
        await sleep(delayMs, undefined, { signal: this.o.signal }).catch(() => undefined);
      }
    }
  }

  /**
   * True when the rows can be blamed for a data error: the table matches what the row builder
   * writes (checked once per write). False on a mismatch, or when the check itself fails.
   */
  private async schemaMatches(table: string, write: { schemaMatches: boolean }): Promise<boolean> {
    if (write.schemaMatches) return true;
    try {
      const problems = await this.o.checkSchema(table);
      if (problems.length === 0) {
        write.schemaMatches = true;
        return true;
      }
      this.log.error(
        { table, problems },
        'rows refused and the table does not match the row builder: a deployment problem, retrying',
      );
    } catch (err) {
      this.log.warn({ err, table }, 'schema check failed; retrying the insert before blaming rows');
    }
    return false;
  }

  /** Splits a batch ClickHouse refused for its data until the refused rows stand alone. */
  private async isolate<S>(
    table: string,
    items: readonly SinkItem<S>[],
    code: number,
    err: Error,
    write: { schemaMatches: boolean },
  ): Promise<Rejected<S>[]> {
    if (items.length === 1) {
      const [only] = items;
      // The message quotes the row (user ids, addresses): only a redacted excerpt leaves here.
      const message = redactedClickHouseMessage(err.message);
      this.log.warn({ table, code, error: message }, 'row rejected by ClickHouse; dead-lettering it');
      return only ? [{ source: only.source, code, message }] : [];
    }
    const mid = Math.ceil(items.length / 2);
    const left = await this.writeWithRetry(table, items.slice(0, mid), write);
    const right = await this.writeWithRetry(table, items.slice(mid), write);
    return [...left, ...right];
  }

  private throwIfAborted(): void {
    if (this.o.signal.aborted)
      throw new PipelineError(CONSUMER_CODES.sinkAborted, 'sink stopped before the write');
  }
}
