/**
 * Shared by the query API integration tests: the data set goes in through the ingest path, the
 * query service runs on the test database as the read-only user (as main.ts wires it), and a
 * slice becomes the API's query string. Not a test file itself.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IngestActivityRow } from '../../services/consumer/ingest-row.ts';
import { type ClickHouseClient, createClickHouse } from '../../services/lib/clickhouse.ts';
import { createLogger } from '../../services/lib/logger.ts';
import { createRegistry } from '../../services/lib/metrics.ts';
import { buildApp, type QueryApp } from '../../services/query/app.ts';
import { createClickHouseStore } from '../../services/query/clickhouse-store.ts';
import type { Dimension } from '../../services/query/params.ts';
import { clickhouseUrl } from '../harness/services.ts';

export interface Slice {
  from: string;
  to: string;
  tz: string;
  window: 'rolling' | 'calendar';
  filters: Partial<Record<Dimension, string[]>>;
  groupBy: Dimension[];
  includeTest: boolean;
  includeBots: boolean;
}

/** The /v1/active-users query string asking for `s`. */
export function sliceQuery(s: Slice): string {
  const p = new URLSearchParams({ from: s.from, to: s.to, tz: s.tz, window: s.window });
  if (s.groupBy.length > 0) p.set('group_by', s.groupBy.join(','));
  for (const [d, vs] of Object.entries(s.filters)) for (const v of vs) p.append(d, v);
  if (s.includeTest) p.set('include_test', 'true');
  if (s.includeBots) p.set('include_bots', 'true');
  return p.toString();
}

/** Inserts into ingest_user_activity in consumer-sized batches (the views fan out from there). */
export async function ingest(client: ClickHouseClient, rows: readonly IngestActivityRow[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 10_000) {
    await client.insert({
      table: 'ingest_user_activity',
      format: 'JSONEachRow',
      values: rows.slice(i, i + 10_000),
    });
  }
}

export interface QueryApi {
  readonly app: QueryApp;
  /** The read-only user's client the store runs on. */
  readonly reader: ClickHouseClient;
  readonly get: (url: string) => Promise<{ status: number; body: Record<string, unknown> }>;
  readonly close: () => Promise<void>;
}

/** `url` defaults to the shared ClickHouse; fault tests pass their private one. */
export async function startQueryApi(database: string, now: Date, url = clickhouseUrl()): Promise<QueryApi> {
  // The page is not under test here (dashboard.test.ts does that); an empty directory serves nothing.
  const emptyDir = mkdtempSync(join(tmpdir(), 'query-api-'));
  const reader = createClickHouse({ url, database, username: 'analytics_reader' });
  const app = await buildApp({
    logger: createLogger('query-it', 'silent'),
    store: createClickHouseStore(reader, { now: () => now.getTime(), maxGroups: 1000 }),
    registry: createRegistry('query'),
    limits: { maxRangeDays: 400 },
    tokens: [],
    rateLimitPerMinute: 100_000,
    requestTimeoutMs: 10_000,
    clickhouseTimeoutMs: 20_000,
    dashboardDir: emptyDir,
    isShuttingDown: () => false,
    now: () => now,
  });
  return {
    app,
    reader,
    get: async (url) => {
      const res = await app.inject({ url });
      return { status: res.statusCode, body: res.json() };
    },
    close: async () => {
      await app.close();
      await reader.close();
      rmSync(emptyDir, { recursive: true, force: true });
    },
  };
}
