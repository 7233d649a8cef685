/**
 * The one place that imports @clickhouse/client. Builds clients with pino-bridged logging and
 * classifies failures by ClickHouse's numeric error code (never by message text).
 */

import { Readable } from 'node:stream';
import {
  type ClickHouseClient,
  ClickHouseLogLevel,
  type ClickHouseSettings,
  createClient,
} from '@clickhouse/client';
import type { Logger } from './logger.ts';
import { quoteIdentifier } from './sql.ts';
import { encodeTabSeparated } from './tabseparated.ts';

export type { ClickHouseClient, ClickHouseSettings };

/** Inserts `columns` of rows (objects keyed by column) into `table`; rejects as the client does. */
export type InsertRows = (
  table: string,
  columns: readonly string[],
  rows: readonly Readonly<Record<string, unknown>>[],
) => Promise<void>;

/**
 * InsertRows over `client`: TabSeparated with the column list given (tabseparated.ts says why not
 * JSONEachRow). A column the table lacks is refused (code 16), never skipped; a value ClickHouse
 * cannot parse fails the insert with a data error code.
 */
export function rowInserter(client: ClickHouseClient): InsertRows {
  return async (table, columns, rows) => {
    if (columns.length === 0 || rows.length === 0) return;
    await client.insert({
      table,
      values: Readable.from([encodeTabSeparated(rows, columns)], { objectMode: false }),
      format: 'TabSeparated',
      columns: columns.map(quoteIdentifier) as [string, ...string[]],
    });
  };
}

export interface ClickHouseOptions {
  readonly url: string;
  readonly database?: string;
  readonly username?: string;
  readonly password?: string;
  readonly requestTimeoutMs?: number;
  readonly logger?: Logger;
  readonly settings?: ClickHouseSettings;
  readonly application?: string;
}

export function createClickHouse(o: ClickHouseOptions): ClickHouseClient {
  const log = o.logger?.child({ component: 'clickhouse-client' });
  return createClient({
    url: o.url,
    ...(o.database === undefined ? {} : { database: o.database }),
    username: o.username ?? 'default',
    password: o.password ?? '',
    request_timeout: o.requestTimeoutMs ?? 30_000,
    application: o.application ?? 'activity-pipeline',
    ...(o.settings === undefined ? {} : { clickhouse_settings: o.settings }),
    log: log
      ? {
          level: ClickHouseLogLevel.WARN,
          LoggerClass: class {
            trace(p: { message: string; args?: unknown }): void {
              log.trace({ args: p.args }, p.message);
            }
            debug(p: { message: string; args?: unknown }): void {
              log.debug({ args: p.args }, p.message);
            }
            info(p: { message: string; args?: unknown }): void {
              log.info({ args: p.args }, p.message);
            }
            warn(p: { message: string; args?: unknown; err?: Error }): void {
              log.warn({ args: p.args, err: p.err }, p.message);
            }
            // The caller sees and logs every failed request itself; the client's own error line
            // would only duplicate it, so it goes out at debug.
            error(p: { message: string; args?: unknown; err: Error }): void {
              log.debug({ args: p.args, err: p.err }, p.message);
            }
          },
        }
      : { level: ClickHouseLogLevel.OFF },
  });
}

/**
 * The server's numeric error code. Current servers' errors are parsed by the client into `code`;
 * 18.16 formats them as "Code: 47, e.displayText() = ..." which the client leaves unparsed, so the
 * leading numeric code field is read from the structured prefix.
 */
export function clickhouseErrorCode(err: unknown): number | undefined {
  if (!(err instanceof Error)) return undefined;
  const c = (err as { code?: unknown }).code;
  if (typeof c === 'string' && /^\d+$/.test(c)) return Number(c);
  const m = /^Code: (\d+)[.,]/.exec(err.message);
  if (m?.[1]) return Number(m[1]);
  return err.cause === undefined ? undefined : clickhouseErrorCode(err.cause);
}

/** Server codes that describe a transient state: the same request can succeed later. */
const RETRIABLE_CODES = new Set([
  3, // UNEXPECTED_END_OF_FILE
  159, // TIMEOUT_EXCEEDED
  202, // TOO_MANY_SIMULTANEOUS_QUERIES
  203, // NO_FREE_CONNECTION
  209, // SOCKET_TIMEOUT
  210, // NETWORK_ERROR
  241, // MEMORY_LIMIT_EXCEEDED
  242, // TABLE_IS_READ_ONLY
  252, // TOO_MANY_PARTS
  319, // UNKNOWN_STATUS_OF_INSERT
  425, // SYSTEM_ERROR
  999, // KEEPER_EXCEPTION
]);

const NETWORK_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
]);

export type ClickHouseFailure =
  | { readonly kind: 'unavailable'; readonly retriable: true; readonly code: undefined }
  | { readonly kind: 'server'; readonly retriable: boolean; readonly code: number };

/**
 * A ClickHouse error message fit for logs and dead-letter headers: parse errors quote the row they
 * stopped at (`before: <the row's text>`, and on current versions `Row 1: ... parsed text: ...`),
 * which holds user ids, addresses and profile values. That part is cut; the code, the reason and
 * the row number stay, within `max` characters.
 */
export function redactedClickHouseMessage(message: string, max = 300): string {
  const cut = message.search(/ before: |parsed text|\n?Row \d+:|Text: /);
  let out = (cut === -1 ? message : message.slice(0, cut)).replace(/\s+/g, ' ').trim();
  if (cut !== -1) {
    const row = /\(at row (\d+)\)/.exec(message);
    out = `${out} [row content redacted]${row ? ` ${row[0]}` : ''}`;
  }
  return out.length > max ? `${out.slice(0, max)}...` : out;
}

/**
 * Unavailable (no server answer: connection refused, reset, timeout) and retriable server codes can
 * be retried; any other server code is a problem with the request or the data and cannot.
 */
export function classifyClickHouseError(err: unknown): ClickHouseFailure {
  const code = clickhouseErrorCode(err);
  if (code !== undefined) return { kind: 'server', retriable: RETRIABLE_CODES.has(code), code };
  return { kind: 'unavailable', retriable: true, code: undefined };
}

export function isNetworkError(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const errno = (e as { code?: unknown }).code;
    if (typeof errno === 'string' && NETWORK_ERRNOS.has(errno)) return true;
    if (e.message === 'Timeout error.' || e.name === 'AbortError') return true;
  }
  return false;
}

/** Server version as [major, minor]; 18.16 lacks features current releases have (clickhouse/README.md). */
export async function serverVersion(client: ClickHouseClient): Promise<[number, number]> {
  const rs = await client.query({ query: 'SELECT version() AS v', format: 'JSONEachRow' });
  const [row] = await rs.json<{ v: string }>();
  const [major = 0, minor = 0] = (row?.v ?? '0.0').split('.').map(Number);
  return [major, minor];
}
