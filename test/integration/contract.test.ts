/**
 * One contract from intake to ClickHouse, checked field by field: every boundary of every field of
 * spec.ts (services/collector/validation/boundaries.ts) goes through the collector's validation and
 * enrichment, Avro encoding, the consumer's decoding and row building, and a real insert into the
 * ingest tables of ClickHouse 18.16 (a refused insert is retried per case, so a refusal names its case), then the
 * same rows into current ClickHouse (chDB). What validation accepts must be written; what it
 * refuses must be named by field; a dropped value must be named by a warning and absent.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { limitsOf, readCollectorConfig } from '../../services/collector/config.ts';
import { Enricher } from '../../services/collector/enrichment/records.ts';
import { toMessage } from '../../services/collector/publisher.ts';
import {
  type BoundaryCase,
  eventBoundaries,
  traitBoundaries,
  withValue,
} from '../../services/collector/validation/boundaries.ts';
import { validateEvent, validateIdentify } from '../../services/collector/validation/validate.ts';
import { decodeMessage } from '../../services/consumer/decode.ts';
import { toIngestActivityRow, toIngestIdentifyRow } from '../../services/consumer/ingest-row.ts';
import { ingestColumns } from '../../services/consumer/schema.ts';
import { AvroCodec, SCHEMA_HEADER } from '../../services/lib/avro.ts';
import { rowInserter } from '../../services/lib/clickhouse.ts';
import { loadMigrations, migrate } from '../../services/lib/datamodel/migrate.ts';
import { quoteIdentifier } from '../../services/lib/sql.ts';
import { encodeTabSeparated } from '../../services/lib/tabseparated.ts';
import { runChdb } from '../harness/chdb.ts';
import { freshDatabase, type TestDatabase } from '../harness/services.ts';

const codec = new AvroCodec();
const now = Date.now();
// The collector's defaults, as it runs unconfigured.
const LIMITS = limitsOf(readCollectorConfig({ WRITE_KEYS: 'test-key:test' }));
const ctx = {
  source: 'contract',
  receivedAt: now,
  sentAt: undefined,
  ip: '192.0.2.1',
  userAgent: 'ua',
  scope: 'all' as const,
};
const enricher = new Enricher({ anonymizeIp: true, geo: undefined, geoAddress: 'full', fineGeo: true });

type Row = Record<string, unknown>;
interface Outcome {
  readonly c: BoundaryCase;
  readonly table: 'ingest_user_activity' | 'ingest_user_identify';
  readonly row?: Row;
  readonly problems?: readonly string[];
  readonly warnings?: readonly string[];
}

/** Collector (validate, enrich, encode) then consumer (decode, build the row): no I/O. */
function throughPipeline(c: BoundaryCase, family: 'user_activity' | 'user_identify'): Outcome {
  const table = family === 'user_activity' ? 'ingest_user_activity' : 'ingest_user_identify';
  const base =
    family === 'user_activity'
      ? { event_id: randomUUID(), user_id: 'contract-user', activity: 'login', feature: 'auth' }
      : { event_id: randomUUID(), user_id: 'contract-user', traits: {} };
  const input = withValue(base, c.path, c.value);
  const r =
    family === 'user_activity' ? validateEvent(input, ctx, LIMITS) : validateIdentify(input, ctx, LIMITS);
  if (!r.ok) return { c, table, problems: r.problems.map((p) => p.message) };
  const outgoing =
    family === 'user_activity'
      ? ({ family, record: enricher.activity(r.value as never, ctx) } as const)
      : ({ family, record: enricher.identify(r.value as never, ctx) } as const);
  const msg = toMessage(codec, outgoing);
  const decoded = decodeMessage(codec, {
    offset: '0',
    key: Buffer.from(msg.key),
    value: msg.value,
    headers: { [SCHEMA_HEADER]: msg.headers[SCHEMA_HEADER] ?? '' },
    timestamp: String(now),
  });
  if (decoded.kind === 'poison')
    throw new Error(`${c.path} ${c.label}: consumer refused: ${decoded.message}`);
  const row =
    decoded.kind === 'activity' ? toIngestActivityRow(decoded.record) : toIngestIdentifyRow(decoded.record);
  return { c, table, row: row as unknown as Row, warnings: r.warnings };
}

const outcomes: Outcome[] = [
  ...eventBoundaries(now).map((c) => throughPipeline(c, 'user_activity')),
  ...traitBoundaries(now).map((c) => throughPipeline(c, 'user_identify')),
];
const accepted = outcomes.filter((o) => o.row !== undefined);
const name = (o: Outcome): string => `${o.c.path} = ${o.c.label}`;

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase('contract');
  await migrate({ client: db.client, database: db.name });
});
afterAll(async () => {
  await db?.drop();
});

describe('the one contract', () => {
  it('names the field of every boundary value it refuses', () => {
    for (const o of outcomes) {
      if (o.problems === undefined) continue;
      // The event's own path, or a path inside it (details[0].type), or the event as a whole.
      const named = o.problems.some((p) => p.startsWith(o.c.path) || p.startsWith('event:'));
      expect(named, `${name(o)}: ${o.problems.join('; ')}`).toBe(true);
    }
  });

  it('leaves out a dropped value and says so in a warning', () => {
    for (const o of accepted) {
      const dropped = (o.warnings ?? []).filter((w) => w.startsWith(`${o.c.path}:`) && w.endsWith('ignored'));
      if (dropped.length === 0) continue;
      const column = o.c.path.split('.').pop() as string;
      expect(o.row?.[column] ?? null, name(o)).toBeNull();
    }
  });

  it('accepts the reproductions of issue 10 instead of losing them later', () => {
    const find = (path: string, label: string) =>
      outcomes.find((o) => o.c.path === path && o.c.label === label) as Outcome;
    expect(find('session_id', 'max').row?.session_id).toBe(9_007_199_254_740_990);
    expect(find('user.birth_date', 'year 1').row?.birth_date).toBeNull();
    expect(find('user.registration_date', 'year 9999').row?.registration_date).toBeNull();
    expect(find('traits.birth_date', '1900-01-01').row?.birth_date).toBe('1900-01-01');
    expect(find('feature', 'empty').problems).toBeDefined();
    // The boundaries include values refused and values dropped; a generator that produced only
    // accepted values would prove nothing.
    expect(outcomes.filter((o) => o.problems).length).toBeGreaterThan(20);
    expect(accepted.length).toBeGreaterThan(50);
  });

  it('writes every accepted boundary value to ClickHouse 18.16', async () => {
    const refused: string[] = [];
    // The consumer's own insert (TabSeparated, services/lib/clickhouse.ts).
    const insert = rowInserter(db.client);
    for (const table of ['ingest_user_activity', 'ingest_user_identify'] as const) {
      const cases = accepted.filter((o) => o.table === table);
      try {
        await insert(
          table,
          ingestColumns(table),
          cases.map((o) => o.row as Row),
        );
      } catch {
        // One insert per case only to name the refused ones (an insert is atomic: none was written).
        for (const o of cases) {
          try {
            await insert(table, ingestColumns(table), [o.row as Row]);
          } catch (err) {
            refused.push(`${name(o)}: ${(err as Error).message.slice(0, 200)}`);
          }
        }
      }
    }
    expect(refused).toEqual([]);
    const rs = await db.client.query({
      query: 'SELECT count() AS n FROM fact_user_activity',
      format: 'JSONEachRow',
    });
    const [{ n } = { n: '0' }] = await rs.json<{ n: string }>();
    expect(Number(n)).toBe(accepted.filter((o) => o.table === 'ingest_user_activity').length);
  });

  it('writes the same rows to current ClickHouse (chDB)', () => {
    const insert = (table: string) => {
      const rows = accepted.filter((o) => o.table === table).map((o) => o.row as Row);
      return { sql: tabSeparatedInsert(table, ingestColumns(table), rows) };
    };
    const { results } = runChdb(mkdtempSync(join(tmpdir(), 'chdb-contract-')), [
      ...loadMigrations().flatMap((m) => m.statements.map((sql) => ({ sql }))),
      insert('ingest_user_activity'),
      insert('ingest_user_identify'),
      { sql: 'SELECT count() FROM fact_user_activity', format: 'CSV' },
    ]);
    expect(Number(results.at(-1))).toBe(accepted.filter((o) => o.table === 'ingest_user_activity').length);
  });

  // The insert format's escaping, value for value: what is read back is what was sent.
  it('TabSeparated inserts round-trip every byte class on 18.16 and current ClickHouse', async () => {
    const tricky = [
      'plain',
      '',
      'tab\there',
      'line\nfeed',
      'carriage\rreturn\r',
      'back\\slash\\',
      'quote\'s "double"',
      'nul\0byte',
      'bell\u0007 bs\b ff\f vt\v esc\u001b del\u007f',
      '\\N',
      'ü ✓ 😀 \u2028',
      Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).join(''),
    ];
    const rows = tricky.map((s, i) => ({ i, s, n: i % 2 === 0 ? null : s, a: [s, `${s}'`, '\\'] }));
    const ddl =
      'CREATE TABLE tsv_roundtrip (i UInt32, s String, n Nullable(String), a Array(String)) ENGINE = Memory';
    const select = 'SELECT i, s, n, a FROM tsv_roundtrip ORDER BY i FORMAT JSONEachRow';
    await db.client.command({ query: ddl });
    await rowInserter(db.client)('tsv_roundtrip', ['i', 's', 'n', 'a'], rows);
    const rs = await db.client.query({
      query: select.replace(' FORMAT JSONEachRow', ''),
      format: 'JSONEachRow',
    });
    expect(await rs.json()).toEqual(rows);
    const { results } = runChdb(mkdtempSync(join(tmpdir(), 'chdb-tsv-')), [
      { sql: ddl },
      { sql: tabSeparatedInsert('tsv_roundtrip', ['i', 's', 'n', 'a'], rows) },
      { sql: select.replace(' FORMAT JSONEachRow', ''), format: 'JSONEachRow' },
    ]);
    const current = (results.at(-1) ?? '')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l));
    expect(current).toEqual(rows);
  });
});

/** The consumer's insert as one SQL text (chDB takes the data inline after the format name). */
function tabSeparatedInsert(table: string, columns: readonly string[], rows: readonly Row[]): string {
  return `INSERT INTO ${table} (${columns.map(quoteIdentifier).join(', ')}) FORMAT TabSeparated\n${encodeTabSeparated(rows, columns).toString()}`;
}
