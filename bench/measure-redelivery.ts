/**
 * What the consumer's re-delivery check costs (services/consumer/profiles.ts, "Re-delivery keeps the
 * actor"): after an assignment, the events of a batch that the identity links would now re-key are
 * looked up in the facts by event id before the batch is written. The limit it is measured against
 * is what the consumer does with the same batch anyway, on the same server in the same run: the
 * batch's insert (TabSeparated, every view). Three cases, interleaved, medians reported:
 *   - look-up, all found: every event of the batch was written before (a whole batch re-delivered);
 *   - look-up, none found: the events are new (the first minute after an assignment, or a backlog);
 *   - insert: the same number of rows into ingest_user_activity, as the consumer writes them.
 * The facts hold `--events` synthetic events over `--days` days (test/fixtures/synthetic.ts), the
 * probes are all of the last day, as a re-delivery's are.
 *
 * Usage: node bench/measure-redelivery.ts [--events 3000000] [--days 30] [--batch 10000] [--runs 5]
 *   (CLICKHOUSE_URL as for the migrator; a fresh database, dropped at the end). Prints a table and
 *   writes bench/out/redelivery-<time>/redelivery.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { uniqueName } from '../deploy/local/private-stack.ts';
import { type IngestActivityRow, toIngestActivityRow } from '../services/consumer/ingest-row.ts';
import { clickhouseLookup } from '../services/consumer/lookups.ts';
import type { WrittenProbe } from '../services/consumer/profiles.ts';
import { INGEST_TABLES, ingestColumns } from '../services/consumer/schema.ts';
import { createClickHouse, rowInserter } from '../services/lib/clickhouse.ts';
import { readConfig, url } from '../services/lib/config.ts';
import { migrate } from '../services/lib/datamodel/migrate.ts';
import { activity } from '../test/fixtures/records.ts';
import { loadSynthetic, SYNTH_LAST_DAY } from '../test/fixtures/synthetic.ts';
import { round, summary } from './lib/measure.ts';

const cfg = readConfig({ CLICKHOUSE_URL: url('ClickHouse HTTP URL', 'http://127.0.0.1:8123') }, process.env);
const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const events = arg('--events', 3_000_000);
const days = arg('--days', 30);
const batch = arg('--batch', 10_000);
const runs = arg('--runs', 5);
const log = (line: string): void => void process.stdout.write(`${line}\n`);

const database = uniqueName('bench_redelivery');
const admin = createClickHouse({ url: cfg.CLICKHOUSE_URL });
await admin.command({ query: `CREATE DATABASE ${database}` });
const client = createClickHouse({ url: cfg.CLICKHOUSE_URL, database, requestTimeoutMs: 600_000 });
try {
  await migrate({ client, database });
  log(`loading ${events.toLocaleString('en-US')} synthetic events over ${days} days into ${database}`);
  await loadSynthetic(client, {
    events,
    users: Math.ceil(events / 10),
    chunk: 1_000_000,
    seed: 9,
    days,
    log,
  });
  const lastDay = Date.parse(`${SYNTH_LAST_DAY}T00:00:00Z`);
  const rs = await client.query({
    query: `SELECT event_id, toUInt64(activity_timestamp) * 1000 AS ts FROM fact_user_activity
            WHERE date_key = ${SYNTH_LAST_DAY.replaceAll('-', '')} LIMIT ${batch}`,
    format: 'JSONEachRow',
  });
  const written: WrittenProbe[] = (await rs.json<{ event_id: string; ts: string }>()).map((r) => ({
    eventId: r.event_id,
    activityTimestamp: Number(r.ts),
  }));
  if (written.length < batch)
    throw new Error(`only ${written.length} events on the last day; raise --events`);
  const absent = written.map((p, i) => ({ eventId: `absent-${i}`, activityTimestamp: p.activityTimestamp }));

  const lookup = clickhouseLookup(client, { insertVisibleWithinMs: 30_000 });
  const insert = rowInserter(client);
  const columns = ingestColumns(INGEST_TABLES.activity);
  const rowsOf = (run: number): Record<string, unknown>[] =>
    Array.from({ length: written.length }, (_, i) => {
      const row: IngestActivityRow = toIngestActivityRow(
        activity({
          event_id: `insert-${run}-${i}`,
          anonymous_id: `anon-${run}-${i}`,
          activity_timestamp: lastDay + (i % 86_400) * 1_000,
        }) as never,
      );
      return row as unknown as Record<string, unknown>;
    });

  const timed = async (f: () => Promise<unknown>): Promise<number> => {
    const t0 = performance.now();
    await f();
    return performance.now() - t0;
  };
  const ms = { found: [] as number[], absent: [] as number[], insert: [] as number[] };
  // One warm-up of each, then interleaved runs, so a busy moment of the machine hits all three.
  for (let run = 0; run <= runs; run += 1) {
    const rows = rowsOf(run);
    let found = 0;
    const f = await timed(async () => {
      found = (await lookup.writtenActors(written)).size;
    });
    const a = await timed(() => lookup.writtenActors(absent));
    const w = await timed(() => insert(INGEST_TABLES.activity, columns, rows));
    if (found !== written.length) throw new Error(`found ${found} of ${written.length} written events`);
    if (run === 0) continue;
    ms.found.push(f);
    ms.absent.push(a);
    ms.insert.push(w);
  }
  const insertP50 = summary(ms.insert).p50;
  const table = [
    ['look-up, all found (a re-delivered batch)', ms.found],
    ['look-up, none found (new events)', ms.absent],
    ['insert of the batch (what the consumer does anyway)', ms.insert],
  ].map(([name, values]) => {
    const s = summary(values as number[]);
    return {
      case: name as string,
      p50Ms: round(s.p50, 1),
      maxMs: round(s.max, 1),
      ofInsert: round(s.p50 / insertP50, 2),
    };
  });
  log(
    `\n${batch.toLocaleString('en-US')} events per batch, ${runs} runs, facts ${events.toLocaleString('en-US')} events / ${days} days`,
  );
  log('| case | p50 ms | max ms | p50 / insert p50 |\n| --- | --- | --- | --- |');
  for (const r of table) log(`| ${r.case} | ${r.p50Ms} | ${r.maxMs} | ${r.ofInsert} |`);
  const out = new URL(`out/redelivery-${new Date().toISOString().replace(/[:.]/g, '-')}/`, import.meta.url)
    .pathname;
  mkdirSync(out, { recursive: true });
  writeFileSync(`${out}redelivery.json`, JSON.stringify({ events, days, batch, runs, ms, table }, null, 2));
  log(`\nwritten ${out}redelivery.json`);
} finally {
  await client.close();
  await admin.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await admin.close();
}
