/**
 * Measures the insert formats that both @clickhouse/client and ClickHouse 18.16 accept for the
 * consumer's ingest insert, so the choice in sink.ts rests on numbers (services/consumer/README.md
 * records them):
 *   - JSONEachRow   client.insert with row objects (the client serializes)
 *   - TabSeparated  client.insert with a raw stream serialized here
 *   - RowBinary     client.exec with a raw body (the client has no RowBinary insert), encoded here
 * Each format writes the same realistic activity rows (services/consumer/ingest-row.ts) into
 *   (a) ingest_user_activity with all its materialized views (the real path), and
 *   (b) a Null table of the same columns without views (parse + transfer only).
 * Reported: client encode time, insert wall time, rows/s, bytes sent.
 *
 *   node bench/measure-formats.ts [rows=20000] [rounds=5]
 * with CLICKHOUSE_URL (default http://127.0.0.1:8123). Creates and drops its own database.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { type ActivityRecord, toIngestActivityRow } from '../services/consumer/ingest-row.ts';
import { type ClickHouseClient, createClickHouse } from '../services/lib/clickhouse.ts';
import { readConfig, url } from '../services/lib/config.ts';
import { migrate } from '../services/lib/datamodel/migrate.ts';
import { createLogger } from '../services/lib/logger.ts';

type Row = Record<string, unknown>;
interface Column {
  readonly name: string;
  readonly type: string;
}

function record(i: number): ActivityRecord {
  const now = Date.now() - (i % 86_400) * 1_000;
  return {
    event_id: randomUUID(),
    source: 'web',
    received_at: now,
    sent_at: now - 20,
    original_timestamp: now - 25,
    activity_timestamp: now - 5,
    user_id: i % 3 === 0 ? null : `user-${i % 5_000}`,
    anonymous_id: `anon-${i % 9_000}`,
    session_id: 1_700_000_000 + (i % 1_000),
    duration_seconds: i % 600,
    activity_name: ['view', 'click', 'purchase', 'search'][i % 4] ?? 'view',
    activity_category: 'engagement',
    is_conversion_event: i % 4 === 2,
    activity_weight: 1,
    feature_name: `feature-${i % 40}`,
    feature_category: 'core',
    is_core_feature: true,
    feature_release_date: Date.UTC(2024, 0, 1),
    feature_owner: 'team-a',
    device_id: `dev-${i % 7_000}`,
    device_type: 'desktop',
    platform: 'web',
    os_version: 'Mac OS 14.1',
    app_version: '3.2.1',
    browser_name: 'Chrome',
    browser_version: '120.0',
    continent_code: 'EU',
    country_code: 'DE',
    country_name: 'Germany',
    region_code: 'BE',
    region_name: 'Berlin',
    city_name: 'Berlin',
    postal_code: '10115',
    latitude: 52.52,
    longitude: 13.405,
    timezone: 'Europe/Berlin',
    registration_date: Date.UTC(2023, 5, 1),
    birth_date: 7_000 + (i % 9_000),
    gender: i % 2 ? 'female' : 'male',
    segment_name: 'pro',
    segment_description: 'paying teams',
    segment_category: 'paid',
    account_status: 'active',
    is_test_account: false,
    user_attributes: '{"plan":"pro","seats":12}',
    client_ip: '203.0.113.0',
    user_agent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/537.36 Chrome/120.0 Safari/537.36',
    is_bot: false,
    activity_metadata: `{"path":"/app/${i % 100}","ref":"https://example.com/?q=a\\tb"}`,
    details: i % 5 === 0 ? [{ detail_type: 'cart', detail_payload: '{"sku":"A-1","qty":2}' }] : [],
  };
}

const TSV_ESCAPES: Record<string, string> = {
  '\\': '\\\\',
  '\t': '\\t',
  '\n': '\\n',
  '\r': '\\r',
  '\0': '\\0',
};
const tsvString = (s: string): string => s.replace(/[\\\t\n\r\0]/g, (c) => TSV_ESCAPES[c] ?? c);
const quoted = (s: string): string => `'${s.replace(/[\\']/g, (c) => `\\${c}`)}'`;

function tsvValue(v: unknown): string {
  if (v === null || v === undefined) return '\\N';
  if (Array.isArray(v)) return tsvString(`[${v.map((x) => quoted(String(x))).join(',')}]`);
  if (typeof v === 'string') return tsvString(v);
  return String(v);
}

function toTsv(rows: readonly Row[], cols: readonly Column[]): string {
  let out = '';
  for (const r of rows) out += `${cols.map((c) => tsvValue(r[c.name])).join('\t')}\n`;
  return out;
}

/** RowBinary for the column types the ingest table uses. */
class RowBinaryWriter {
  private buf = Buffer.allocUnsafe(1 << 20);
  private at = 0;

  private room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n));
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
  }
  private varint(n: number): void {
    this.room(10);
    let v = n;
    while (v >= 0x80) {
      this.buf[this.at++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[this.at++] = v;
  }
  private string(s: string): void {
    const len = Buffer.byteLength(s);
    this.varint(len);
    this.room(len);
    this.at += this.buf.write(s, this.at);
  }
  value(type: string, v: unknown): void {
    if (type.startsWith('Nullable(')) {
      this.room(1);
      this.buf[this.at++] = v === null || v === undefined ? 1 : 0;
      if (v !== null && v !== undefined) this.value(type.slice(9, -1), v);
      return;
    }
    if (type.startsWith('Array(')) {
      const items = v as unknown[];
      this.varint(items.length);
      for (const x of items) this.value(type.slice(6, -1), x);
      return;
    }
    this.room(8);
    switch (type) {
      case 'String':
        this.string(String(v));
        return;
      case 'UInt8':
        this.buf[this.at++] = Number(v);
        return;
      case 'Int32':
        this.at = this.buf.writeInt32LE(Number(v), this.at);
        return;
      case 'Int64':
        this.at = this.buf.writeBigInt64LE(BigInt(v as number), this.at);
        return;
      case 'UInt64':
        this.at = this.buf.writeBigUInt64LE(BigInt(v as number), this.at);
        return;
      case 'Float64':
        this.at = this.buf.writeDoubleLE(Number(v), this.at);
        return;
      default:
        throw new Error(`RowBinary: type ${type} not handled`);
    }
  }
  done(): Buffer {
    return this.buf.subarray(0, this.at);
  }
}

function toRowBinary(rows: readonly Row[], cols: readonly Column[]): Buffer {
  const w = new RowBinaryWriter();
  for (const r of rows) for (const c of cols) w.value(c.type, r[c.name]);
  return w.done();
}

interface Result {
  format: string;
  table: string;
  encodeMs: number;
  insertMs: number;
  bytes: number;
}

async function measure(
  client: ClickHouseClient,
  table: string,
  rows: readonly Row[],
  cols: readonly Column[],
): Promise<Result[]> {
  const out: Result[] = [];
  const time = async (f: () => Promise<void>): Promise<number> => {
    const t = performance.now();
    await f();
    return performance.now() - t;
  };
  {
    let bytes = 0;
    const encodeMs = await time(async () => {
      for (const r of rows) bytes += JSON.stringify(r).length + 1;
    });
    const insertMs = await time(() =>
      client.insert({ table, values: rows as Row[], format: 'JSONEachRow' }).then(() => {}),
    );
    // The client serializes the rows itself during the insert: its encode time is inside insertMs.
    out.push({ format: 'JSONEachRow', table, encodeMs, insertMs, bytes });
  }
  {
    let body = '';
    const encodeMs = await time(async () => {
      body = toTsv(rows, cols);
    });
    const insertMs = await time(() =>
      client
        .insert({ table, values: Readable.from([body], { objectMode: false }), format: 'TabSeparated' })
        .then(() => {}),
    );
    out.push({
      format: 'TabSeparated',
      table,
      encodeMs,
      insertMs: encodeMs + insertMs,
      bytes: Buffer.byteLength(body),
    });
  }
  {
    let body: Buffer = Buffer.alloc(0);
    const encodeMs = await time(async () => {
      body = toRowBinary(rows, cols);
    });
    const insertMs = await time(async () => {
      const res = await client.exec({
        query: `INSERT INTO ${table} (${cols.map((c) => `\`${c.name}\``).join(',')}) FORMAT RowBinary`,
        values: Readable.from([body], { objectMode: false }),
      });
      res.stream.resume();
      await new Promise((r) => res.stream.once('end', r));
    });
    out.push({ format: 'RowBinary', table, encodeMs, insertMs: encodeMs + insertMs, bytes: body.length });
  }
  return out;
}

async function main(): Promise<void> {
  const c = readConfig({ CLICKHOUSE_URL: url('ClickHouse HTTP URL', 'http://127.0.0.1:8123') }, process.env);
  const logger = createLogger('measure-formats');
  const n = Number(process.argv[2] ?? 20_000);
  const rounds = Number(process.argv[3] ?? 5);
  const database = `measure_formats_${Date.now().toString(36)}`;
  const root = createClickHouse({ url: c.CLICKHOUSE_URL });
  await root.command({ query: `CREATE DATABASE ${database}` });
  const client = createClickHouse({ url: c.CLICKHOUSE_URL, database, requestTimeoutMs: 120_000 });
  try {
    await migrate({ client, database });
    await client.command({ query: 'CREATE TABLE ingest_no_views AS ingest_user_activity ENGINE = Null' });
    const rs = await client.query({
      query: `SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = 'ingest_user_activity'`,
      format: 'JSONEachRow',
    });
    const cols = await rs.json<Column>();
    const rows = Array.from({ length: n }, (_, i) => toIngestActivityRow(record(i)) as unknown as Row);
    const all: Result[] = [];
    for (let round = 0; round <= rounds; round++) {
      for (const table of ['ingest_no_views', 'ingest_user_activity']) {
        const results = await measure(client, table, rows, cols);
        // Round 0 warms up connections and the server's caches; it is not reported.
        if (round > 0) all.push(...results);
      }
    }
    const summary: Record<string, unknown>[] = [];
    for (const table of ['ingest_no_views', 'ingest_user_activity']) {
      for (const format of ['JSONEachRow', 'TabSeparated', 'RowBinary']) {
        const rs2 = all.filter((r) => r.table === table && r.format === format);
        const ms = rs2.map((r) => r.insertMs).sort((a, b) => a - b);
        const median = ms[Math.floor(ms.length / 2)] ?? 0;
        summary.push({
          table,
          format,
          rows: n,
          medianMs: Math.round(median),
          rowsPerSecond: Math.round(n / (median / 1000)),
          bytesPerRow: Math.round((rs2[0]?.bytes ?? 0) / n),
        });
      }
    }
    logger.info({ rounds, summary }, 'insert format measurement (median of rounds, encode included)');
    process.stdout.write(`${summary.map((s) => JSON.stringify(s)).join('\n')}\n`);
  } finally {
    await root.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    await root.close();
    await client.close();
  }
}

main().catch((err: unknown) => {
  createLogger('measure-formats').fatal({ err }, 'measurement failed');
  process.exit(1);
});
