/**
 * Scenario 10, the scale ladder (issue 11): the same synthetic load (120 days, users = events / 10)
 * at growing sizes, each in a fresh database, so growth shows as a curve: the refresher's catch-up
 * over every closed day (total and per day), the dashboard's default 90-day view from finished
 * numbers (first request and p95, through the query store), the same series from the sketches
 * (the per-request merge finished numbers replace), and storage of facts, sketches and finished
 * numbers. Sizes: 1M, 10M, 30M events (quick: 300k, 1M).
 */
import { createClickHouse } from '../../services/lib/clickhouse.ts';
import { loadSynthetic } from '../../test/fixtures/synthetic.ts';
import { rollupSql, timedQuery } from '../lib/active-users.ts';
import { type Ctx, migratedDatabase, type Row, type Scenario } from '../lib/context.ts';
import { benchStore, catchUp, ninetyDayQuery, tableSizes, timeView } from '../lib/finished.ts';
import { MB, round, summary } from '../lib/measure.ts';

async function rung(ctx: Ctx, events: number): Promise<Row> {
  const db = await migratedDatabase(ctx, `ladder_${events}`);
  try {
    const loadS = await loadSynthetic(db.client, {
      events,
      users: Math.round(events / 10),
      chunk: 1_000_000,
      seed: 9,
      log: ctx.log,
    });
    ctx.log(`  ${events}: refresher catch-up`);
    const client = createClickHouse({ url: ctx.clickhouseUrl, database: db.name, requestTimeoutMs: 600_000 });
    try {
      const caught = await catchUp(client);
      const view = await timeView(benchStore(client), ninetyDayQuery(), ctx.quick ? 5 : 10);
      const sketchMs: number[] = [];
      for (let i = 0; i < (ctx.quick ? 3 : 5); i++)
        sketchMs.push((await timedQuery(ctx.clickhouseUrl, db.name, rollupSql(ninetyDayQuery()))).ms);
      const sizes = await tableSizes(ctx.clickhouseUrl, db.name);
      const mb = (prefix: string) =>
        round([...sizes].filter(([t]) => t.startsWith(prefix)).reduce((a, [, v]) => a + v.bytes, 0) / MB, 1);
      return {
        case: `${events.toLocaleString('en-US')} events`,
        values: {
          'load s': round(loadS),
          'catch-up s': round(caught.seconds, 1),
          'closed days': caught.days,
          's per day': round(caught.seconds / caught.days, 2),
          'run days': caught.runDays,
          'run splits': caught.splits,
          'finished first ms': round(view.firstMs, 1),
          'finished p95 ms': round(view.p95, 1),
          'sketch p50 ms': round(summary(sketchMs).p50),
          'facts MB': mb('fact_user_activity'),
          'sketches MB': mb('rollup_'),
          'finished MB': mb('agg_'),
        },
      };
    } finally {
      await client.close();
    }
  } finally {
    await db.close();
  }
}

export const ladderScenario: Scenario = async (ctx) => {
  const sizes = ctx.quick ? [300_000, 1_000_000] : [1_000_000, 10_000_000, 30_000_000];
  const rows: Row[] = [];
  const failures: string[] = [];
  for (const events of sizes) {
    ctx.log(`  rung: ${events} events`);
    // A failed rung keeps the rungs below it (each takes minutes to tens of minutes) and ends the
    // climb: a larger one would fail the same way.
    try {
      const row = await rung(ctx, events);
      ctx.log(`  rung done: ${JSON.stringify(row)}`);
      rows.push(row);
    } catch (err) {
      failures.push(`${events.toLocaleString('en-US')} events: failed: ${(err as Error).message.trim()}`);
      break;
    }
  }
  return {
    id: '10',
    title: 'Scale ladder: finished numbers and sketches as the data grows',
    notes: [
      `Each rung: a fresh database, ${sizes.map((n) => n.toLocaleString('en-US')).join(' / ')} synthetic events over 120 days (users = events / 10, test/fixtures/synthetic.ts), loaded through the ingest table; the refresher's catch-up in one pass with the service's defaults (services/refresher/config.ts: 7-day runs, split in halves when one exceeds the memory limit; max_threads 1; spill at 1 GiB), 'run days' the run length it ended with; the 90-day overall view through the query store (the API's path), the first request apart; the same series from the sketches (services/query/sql/builder.ts); active parts' sizes as loaded.`,
      ...(ctx.quick ? ['Quick mode: 300k and 1M events, not the 1M / 10M / 30M of the issue.'] : []),
      ...failures,
    ],
    rows,
    targets: [],
    profiles: [],
  };
};
