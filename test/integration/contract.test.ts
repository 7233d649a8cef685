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
import { toIngestActivityRow, toIngestIdentifyRow } from '../../clickhouse/ingest-row.ts';
import { loadMigrations, migrate } from '../../clickhouse/migrate.ts';
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
import { AvroCodec, SCHEMA_HEADER } from '../../services/lib/avro.ts';
import { runChdb } from '../harness/chdb.ts';
import { freshDatabase, type TestDatabase } from '../harness/services.ts';

const codec = new AvroCodec();
const now = Date.now();
// The collector's defaults, as it runs unconfigured.
const LIMITS = limitsOf(readCollectorConfig({ WRITE_KEYS: 'test-key:test' }));
const ctx = { source: 'contract', receivedAt: now, sentAt: undefined, ip: '192.0.2.1', userAgent: 'ua' };
const enricher = new Enricher({ anonymizeIp: true, geo: undefined });

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
    for (const table of ['ingest_user_activity', 'ingest_user_identify'] as const) {
      const cases = accepted.filter((o) => o.table === table);
      try {
        await db.client.insert({ table, values: cases.map((o) => o.row as Row), format: 'JSONEachRow' });
      } catch {
        // One insert per case only to name the refused ones (an insert is atomic: none was written).
        for (const o of cases) {
          try {
            await db.client.insert({ table, values: [o.row as Row], format: 'JSONEachRow' });
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
      const rows = accepted.filter((o) => o.table === table).map((o) => JSON.stringify(o.row));
      return { sql: `INSERT INTO ${table} FORMAT JSONEachRow ${rows.join('\n')}` };
    };
    const { results } = runChdb(mkdtempSync(join(tmpdir(), 'chdb-contract-')), [
      ...loadMigrations().flatMap((m) => m.statements.map((sql) => ({ sql }))),
      insert('ingest_user_activity'),
      insert('ingest_user_identify'),
      { sql: 'SELECT count() FROM fact_user_activity', format: 'CSV' },
    ]);
    expect(Number(results.at(-1))).toBe(accepted.filter((o) => o.table === 'ingest_user_activity').length);
  });
});
