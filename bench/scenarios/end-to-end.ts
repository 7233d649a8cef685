/**
 * Scenario 3, end to end: collector + consumer + ClickHouse under a sustained rate of 100-event
 * batches at 50% and 90% of the collector's measured maximum (scenario 1 of the same run).
 * Freshness from probes (lib/freshness.ts). Consumer lag sampled every second.
 */
import { groupLag } from '../../test/fixtures/kafka.ts';
import { maxTarget, type Row, type Scenario } from '../lib/context.ts';
import { nativeBodies, REQUEST_HEADERS } from '../lib/data.ts';
import { probeFreshness } from '../lib/freshness.ts';
import { autocannon } from '../lib/load.ts';
import { MB, round, rssSampler, summary } from '../lib/measure.ts';
import { startPipeline } from '../lib/processes.ts';

const FRACTIONS = [0.5, 0.9] as const;

export const endToEndScenario: Scenario = async (ctx) => {
  const durationS = ctx.quick ? 10 : 30;
  const maxReqPerS = ctx.shared.get('collector.batchReqPerS') as number | undefined;
  if (maxReqPerS === undefined) throw new Error('needs scenario 1 (the collector maximum) in the same run');
  const { db, topic, groupId, collector, consumer, admin } = await startPipeline(ctx, 'e2e');
  const rows: Row[] = [];
  let freshnessAtHalf = Number.NaN;
  let worstCollectorRss = 0;
  let worstConsumerRss = 0;
  try {
    const [body = ''] = nativeBodies(1, 100);
    for (const fraction of FRACTIONS) {
      const rate = maxReqPerS * fraction;
      ctx.log(`  end to end at ${fraction * 100}% (${Math.round(rate)} req/s of 100 events), ${durationS} s`);
      const rssCollector = rssSampler(collector.pid);
      const rssConsumer = rssSampler(consumer.pid);
      let maxLag = 0;
      const lagTimer = setInterval(() => {
        groupLag(admin, groupId, topic).then(
          (l) => {
            maxLag = Math.max(maxLag, l);
          },
          () => undefined,
        );
      }, 1_000);
      const [load, probes] = await Promise.all([
        autocannon({
          url: `${collector.url}/v1/events`,
          body,
          headers: REQUEST_HEADERS,
          connections: 100,
          durationS,
          rate,
          workDir: ctx.outDir,
        }),
        probeFreshness(ctx.clickhouseUrl, {
          collectorUrl: collector.url,
          database: db.name,
          tag: `probe${Math.round(fraction * 100)}`,
          stop: AbortSignal.timeout(durationS * 1000),
          settleMs: 30_000,
        }),
      ]);
      clearInterval(lagTimer);
      rssCollector.stop();
      rssConsumer.stop();
      worstCollectorRss = Math.max(worstCollectorRss, rssCollector.max() / MB);
      worstConsumerRss = Math.max(worstConsumerRss, rssConsumer.max() / MB);
      const f = summary(probes.freshnessMs);
      if (fraction === 0.5) freshnessAtHalf = f.p99;
      rows.push({
        case: `${fraction * 100}% of collector max`,
        values: {
          'target req/s': round(rate),
          'events/s': round(load.okPerS * 100),
          'p50 ms': load.p50Ms,
          'p99 ms': load.p99Ms,
          'fresh p50 ms': round(f.p50),
          'fresh p99 ms': round(f.p99),
          probes: probes.freshnessMs.length,
          'max lag msgs': maxLag,
          errors: load.non2xx + load.errors + load.timeouts + probes.failed + probes.unseen,
          'collector RSS MB': round(rssCollector.max() / MB),
          'consumer RSS MB': round(rssConsumer.max() / MB),
        },
      });
    }
  } finally {
    await admin.disconnect();
    await collector.stop();
    await consumer.stop();
  }
  return {
    id: '3',
    title: 'End to end: collector -> Kafka -> consumer -> rollups',
    notes: [
      `autocannon at a fixed overall rate (-R) of 100-event requests, 100 connections, ${durationS} s per level; the maximum is scenario 1's collector batch req/s of this run.`,
      'Freshness = probe 2xx -> first 100 ms poll that finds the probe in rollup_users_hourly_feature (so it includes up to 100 ms of polling granularity); probes every 250 ms; consumer at default settings (BATCH_MAX_ROWS 10000, FLUSH_INTERVAL_MS 1000, FLUSH_IDLE_MS 250).',
      'errors = non-2xx + socket errors + timeouts + failed probes + probes never seen within 30 s after the load.',
    ],
    rows,
    targets: [
      maxTarget('freshness p99 at 50% load', freshnessAtHalf, 2_000, 'ms'),
      maxTarget('collector RSS under sustained load', worstCollectorRss, 250, 'MB'),
      maxTarget('consumer RSS under sustained load', worstConsumerRss, 400, 'MB'),
    ],
    profiles: [],
  };
};
