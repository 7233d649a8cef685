/**
 * Scenario 2, consumer: events/s from a pre-filled topic into ClickHouse through the real consumer
 * (services/consumer/main.ts: decode, identity/profile lookups, one insert per batch, every
 * materialized view), per batch size, against the limit: the same rows (services/consumer/ingest-row.ts)
 * POSTed straight to ClickHouse's HTTP interface into the same ingest table, per format and batch
 * size, sequentially as the consumer inserts. A CPU profile of the consumer shows where its time goes.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { uniqueName } from '../../deploy/local/private-stack.ts';
import { type ActivityRecord, toIngestActivityRow } from '../../services/consumer/ingest-row.ts';
import { ingestColumns } from '../../services/consumer/schema.ts';
import { SCHEMA_HEADER } from '../../services/lib/avro.ts';
import { produce } from '../../test/fixtures/kafka.ts';
import {
  type Ctx,
  freshTopic,
  maxTarget,
  migratedDatabase,
  type Row,
  ratioTarget,
  type Scenario,
} from '../lib/context.ts';
import { avroMessages, codec, type RawMessage } from '../lib/data.ts';
import { MB, pollUntil, round, rssSampler } from '../lib/measure.ts';
import { startConsumer } from '../lib/processes.ts';
import { newestProfile, summariseProfile } from '../lib/profile.ts';

const DEFAULT_BATCH_ROWS = 10_000;

async function countFacts(ctx: Ctx, database: string): Promise<number> {
  const r = await fetch(
    `${ctx.clickhouseUrl}/?database=${database}&query=${encodeURIComponent('SELECT count() FROM fact_user_activity')}`,
  );
  return Number((await r.text()).trim());
}

/**
 * Runs the real consumer over the whole topic into a fresh database; rows/s from first to last row.
 * `script` runs another checkout's consumer (a baseline), against this checkout's migrations.
 */
export async function runConsumer(
  ctx: Ctx,
  o: {
    topic: string;
    total: number;
    batchRows: number;
    profileDir?: string;
    script?: string;
    extra?: Readonly<Record<string, string>>;
  },
): Promise<{ rowsPerS: number; rssMb: number; seconds: number }> {
  const db = await migratedDatabase(ctx, 'consumer');
  await db.close();
  const consumer = await startConsumer({
    kafkaBrokers: ctx.kafkaBrokers,
    clickhouseUrl: ctx.clickhouseUrl,
    database: db.name,
    topic: o.topic,
    groupId: uniqueName('bench-consumer'),
    ...(o.profileDir ? { profileDir: o.profileDir } : {}),
    extra: { BATCH_MAX_ROWS: String(o.batchRows), ...o.extra },
  });
  const rss = rssSampler(consumer.pid);
  let firstAt = 0;
  let firstCount = 0;
  try {
    await pollUntil(
      'consumer wrote every row',
      async () => {
        const n = await countFacts(ctx, db.name);
        if (n > 0 && firstAt === 0) {
          firstAt = performance.now();
          firstCount = n;
        }
        return n >= o.total;
      },
      600_000,
      50,
    );
  } finally {
    rss.stop();
    await consumer.stop();
  }
  const seconds = (performance.now() - firstAt) / 1000;
  return { rowsPerS: (o.total - firstCount) / Math.max(seconds, 0.001), rssMb: rss.max() / MB, seconds };
}

/** TabSeparated text of ingest rows (all rows share the key order toIngestActivityRow produces). */
function tsv(rows: readonly Record<string, unknown>[], columns: readonly string[]): string {
  const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n');
  const quote = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const value = (v: unknown): string => {
    if (v === null || v === undefined) return '\\N';
    if (Array.isArray(v))
      return esc(`[${v.map((x) => (typeof x === 'string' ? quote(x) : String(x))).join(',')}]`);
    return typeof v === 'string' ? esc(v) : String(v);
  };
  let out = '';
  for (const r of rows) out += `${columns.map((c) => value(r[c])).join('\t')}\n`;
  return out;
}

/** The limit: sequential HTTP POSTs of `batch` rows each into ingest_user_activity; rows/s. */
async function bareInsert(
  ctx: Ctx,
  rows: readonly Record<string, unknown>[],
  format: 'JSONEachRow' | 'TabSeparated',
  batch: number,
): Promise<number> {
  const db = await migratedDatabase(ctx, 'bare_insert');
  await db.close();
  // The columns the consumer names in its inserts (its rows also carry keys no column takes).
  const columns = ingestColumns('ingest_user_activity');
  const query =
    format === 'JSONEachRow'
      ? 'INSERT INTO ingest_user_activity FORMAT JSONEachRow'
      : `INSERT INTO ingest_user_activity (${columns.map((c) => `\`${c}\``).join(',')}) FORMAT TabSeparated`;
  const url = `${ctx.clickhouseUrl}/?database=${db.name}&query=${encodeURIComponent(query)}`;
  const started = performance.now();
  for (let i = 0; i < rows.length; i += batch) {
    const chunk = rows.slice(i, i + batch);
    // Encoding is part of the cost: the consumer serialises its rows on every insert too.
    const body =
      format === 'JSONEachRow' ? `${chunk.map((r) => JSON.stringify(r)).join('\n')}\n` : tsv(chunk, columns);
    const r = await fetch(url, { method: 'POST', body });
    if (!r.ok) throw new Error(`bare insert (${format}) failed: ${r.status} ${await r.text()}`);
  }
  const seconds = (performance.now() - started) / 1000;
  const n = await countFacts(ctx, db.name);
  if (n !== rows.length) throw new Error(`bare insert wrote ${n} of ${rows.length} rows`);
  return rows.length / seconds;
}

export function ingestRows(messages: readonly RawMessage[]): Record<string, unknown>[] {
  return messages.map((m) => {
    const { value } = codec.decode(m.headers[SCHEMA_HEADER] ?? '', m.value ?? Buffer.alloc(0));
    return toIngestActivityRow(value as unknown as ActivityRecord) as unknown as Record<string, unknown>;
  });
}

export const consumerScenario: Scenario = async (ctx) => {
  const total = ctx.quick ? 40_000 : 200_000;
  const consumerBatches = ctx.quick ? [DEFAULT_BATCH_ROWS] : [1_000, DEFAULT_BATCH_ROWS, 50_000];
  const bareBatches = ctx.quick ? [DEFAULT_BATCH_ROWS] : [1_000, DEFAULT_BATCH_ROWS, 50_000];
  const messages = avroMessages(total);
  const topic = await freshTopic(ctx, 'consumer', 6);
  ctx.log(`  pre-filling ${total} messages`);
  await produce(ctx.kafka, topic, messages);
  const rows: Row[] = [];
  const profileDir = join(ctx.outDir, 'profiles', 'consumer');
  mkdirSync(profileDir, { recursive: true });

  const consumerRate = new Map<number, number>();
  let rssMb = 0;
  for (const batchRows of consumerBatches) {
    ctx.log(`  consumer, BATCH_MAX_ROWS=${batchRows}`);
    const r = await runConsumer(ctx, { topic, total, batchRows });
    consumerRate.set(batchRows, r.rowsPerS);
    rssMb = Math.max(rssMb, r.rssMb);
    rows.push({
      case: `consumer, batch ${batchRows} rows, JSONEachRow`,
      values: { 'rows/s': round(r.rowsPerS), seconds: round(r.seconds, 1), 'RSS MB': round(r.rssMb) },
    });
  }
  // A separate run for the profile, so --cpu-prof's overhead stays out of the numbers above.
  ctx.log(`  consumer, BATCH_MAX_ROWS=${DEFAULT_BATCH_ROWS}, profiled`);
  await runConsumer(ctx, { topic, total, batchRows: DEFAULT_BATCH_ROWS, profileDir });

  const ingest = ingestRows(messages);
  const bareRate = new Map<string, number>();
  for (const format of ['JSONEachRow', 'TabSeparated'] as const) {
    for (const batch of bareBatches) {
      ctx.log(`  bare HTTP insert, ${format}, ${batch} rows`);
      const rate = await bareInsert(ctx, ingest, format, batch);
      bareRate.set(`${format}/${batch}`, rate);
      rows.push({
        case: `limit: bare HTTP insert, batch ${batch}, ${format}`,
        values: { 'rows/s': round(rate) },
      });
    }
  }
  const ours = consumerRate.get(DEFAULT_BATCH_ROWS) ?? 0;
  const sameFormat = bareRate.get(`JSONEachRow/${DEFAULT_BATCH_ROWS}`) ?? 0;
  const best = Math.max(...bareRate.values());
  rows.push({
    case: 'ratio consumer/bare (same batch, JSONEachRow)',
    values: { 'rows/s': round(ours / sameFormat, 3) },
  });
  rows.push({ case: 'ratio consumer/best bare insert', values: { 'rows/s': round(ours / best, 3) } });

  const file = newestProfile(profileDir);
  return {
    id: '2',
    title: 'Consumer: Kafka -> ClickHouse',
    notes: [
      `${total} Avro activity messages pre-filled on a 6-partition topic; each consumer run reads all of them into a fresh database (materialized views included); rows/s from the first to the last row seen in fact_user_activity (polled every 50 ms).`,
      'The limit inserts the same rows (services/consumer/ingest-row.ts output) into the same ingest table with one HTTP POST per batch, sequentially, encoding included; only formats this ClickHouse accepts for input and the bench can produce without a native client are tried.',
    ],
    rows,
    targets: [
      ratioTarget('consumer vs bare insert (rows/s, same batch size and format)', ours, sameFormat, 0.5),
      maxTarget('consumer RSS at max load', rssMb, 400, 'MB'),
    ],
    profiles: file
      ? [
          {
            what: `consumer draining the topic, BATCH_MAX_ROWS=${DEFAULT_BATCH_ROWS} (node --cpu-prof)`,
            summary: summariseProfile(file),
          },
        ]
      : [],
  };
};
