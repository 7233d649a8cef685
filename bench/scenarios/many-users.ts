/**
 * Scenario 7, many users (issue 10, reproduction 0): the real collector at its maximum rate
 * (closed loop, 100 connections, 500-event batches, every event distinct) with 1,000,000 distinct
 * 18-character user ids (`--quick`: 100,000), cold caches, into a real consumer. Does the consumer
 * keep up, and does every accepted event land?
 *
 * "Keeps up" is measured as the consumer's rows/s over its own active window (first row landed ->
 * last row landed) against the collector's accepted events/s over its own (first 2xx -> last 2xx):
 * a consumer that keeps up is shifted by its freshness but stretched by nothing, so the ratio is 1;
 * one that falls behind stretches its window and the ratio drops below 1. A wedged consumer (rows
 * stop growing while accepted events are missing, for STALL seconds) ends the scenario with the
 * stall reported instead of hanging it.
 */
import {
  type Ctx,
  freshTopic,
  maxTarget,
  migratedDatabase,
  ratioTarget,
  type Scenario,
  type Target,
  uniqueName,
} from '../lib/context.ts';
import { probeFreshness } from '../lib/freshness.ts';
import { MB, round, rssSampler, summary } from '../lib/measure.ts';
import { distinctEventIds, factRows, type Sample, watchPipeline } from '../lib/pipeline.ts';
import { startCollector, startConsumer } from '../lib/processes.ts';
import { type SenderResult, startSender } from '../lib/sender.ts';

const CONNECTIONS = 100;
const PER_REQUEST = 500;

/** The first sample at which `rows` reached `n` (ms since the watch started), or undefined. */
const reached = (samples: readonly Sample[], n: number) => samples.find((s) => s.rows >= n)?.t;

function lastLines(text: string, n: number): string {
  return text
    .split('\n')
    .filter((l) => /error|fail|exceed/i.test(l))
    .slice(-n)
    .map((l) => l.slice(0, 400))
    .join(' | ');
}

export const manyUsersScenario: Scenario = async (ctx: Ctx) => {
  const events = ctx.quick ? 200_000 : 3_000_000;
  const users = ctx.quick ? 100_000 : 1_000_000;
  const stallS = ctx.quick ? 30 : 60;
  const db = await migratedDatabase(ctx, 'many');
  await db.close();
  const topic = await freshTopic(ctx, 'many', 6);
  const groupId = uniqueName('bench-many');
  const collector = await startCollector({ kafkaBrokers: ctx.kafkaBrokers, topic });
  const consumer = await startConsumer({
    kafkaBrokers: ctx.kafkaBrokers,
    clickhouseUrl: ctx.clickhouseUrl,
    database: db.name,
    topic,
    groupId,
  });
  const admin = ctx.kafka.admin();
  await admin.connect();
  const rssCollector = rssSampler(collector.pid);
  const rssConsumer = rssSampler(consumer.pid);
  let probesAcked = 0;
  let stalled: Sample | undefined;
  let sent: SenderResult;
  let consumerLog = '';
  const watchStart = Date.now();
  const sender = startSender({
    mode: 'closed',
    connections: CONNECTIONS,
    url: `${collector.url}/v1/events`,
    perRequest: PER_REQUEST,
    users,
    seqStart: 0,
    bodies: 'distinct',
    events,
    timeoutMs: 30_000,
    progressMs: 1_000,
  });
  const watch = watchPipeline({
    clickhouseUrl: ctx.clickhouseUrl,
    database: db.name,
    admin,
    groupId,
    topic,
    collectorPid: collector.pid,
    consumerPid: consumer.pid,
    progress: () => {
      const p = sender.progress();
      return { ...p, accepted: p.accepted + probesAcked };
    },
    everyMs: 1_000,
    stallMs: stallS * 1000,
  });
  const probing = new AbortController();
  const probes = probeFreshness(ctx.clickhouseUrl, {
    collectorUrl: collector.url,
    database: db.name,
    tag: 'many',
    stop: probing.signal,
    settleMs: 10_000,
    onAck: () => {
      probesAcked++;
    },
  });
  try {
    ctx.log(
      `  ${events.toLocaleString()} events from ${users.toLocaleString()} users, ${PER_REQUEST}/request`,
    );
    const progress = setInterval(() => {
      const s = watch.last();
      if (s) ctx.log(`  ${round(s.t / 1000)} s: accepted ${s.accepted}, rows ${s.rows}, lag ${s.lag}`);
      if (watch.stalledAt() !== undefined) sender.stop();
    }, 10_000);
    sent = await sender.done;
    clearInterval(progress);
    probing.abort();
    // After the last 2xx: wait until every accepted event (probes included) is a row, or a stall.
    while (watch.stalledAt() === undefined) {
      const s = watch.last();
      if (s && s.t > sent.endedAt - watchStart && s.rows >= sent.accepted + probesAcked) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    stalled = watch.stalledAt();
    if (stalled) {
      ctx.log(`  STALLED: ${stalled.rows} rows of ${stalled.accepted} accepted, lag ${stalled.lag}`);
      probing.abort();
    }
    await probes;
  } finally {
    watch.stop();
    rssCollector.stop();
    rssConsumer.stop();
    probing.abort();
    await admin.disconnect();
    await collector.stop();
    consumerLog = await consumer.stop(5_000);
  }
  const fresh = await probes;
  const rows = await factRows(ctx.clickhouseUrl, db.name);
  const distinct = await distinctEventIds(ctx.clickhouseUrl, db.name, rows);
  const expected = sent.accepted + probesAcked;
  const samples = watch.samples;
  const firstRowMs = reached(samples, 1);
  const allRowsMs = stalled ? undefined : reached(samples, expected);
  // Windows, each in seconds: the collector's first -> last 2xx; the consumer's first -> last row.
  const sendS = (sent.lastOkAt - sent.firstOkAt) / 1000;
  const acceptedPerS = sendS > 0 ? sent.accepted / sendS : 0;
  const consumerEndMs = allRowsMs ?? stalled?.t ?? samples.at(-1)?.t ?? 0;
  const consumeS = firstRowMs === undefined ? 0 : (consumerEndMs - firstRowMs) / 1000;
  const consumerPerS = consumeS > 0 ? rows / consumeS : 0;
  const drainS = allRowsMs === undefined ? Number.NaN : (watchStart + allRowsMs - sent.lastOkAt) / 1000;
  const maxLag = Math.max(0, ...samples.map((s) => s.lag).filter((l) => !Number.isNaN(l)));
  const f = summary(fresh.freshnessMs);
  const landed: Target = {
    name: 'every accepted event in fact_user_activity (distinct event ids = accepted)',
    target: `${expected.toLocaleString()} (sender ${sent.accepted.toLocaleString()} + probes ${probesAcked})`,
    measured: distinct.toLocaleString(),
    met: distinct === expected && rows === distinct,
    margin:
      distinct === expected
        ? rows === distinct
          ? 'exact'
          : `${rows - distinct} duplicate rows`
        : `${(expected - distinct).toLocaleString()} missing (${(((expected - distinct) / expected) * 100).toFixed(1)}%)`,
  };
  const notes = [
    `${events.toLocaleString()} events from ${users.toLocaleString()} distinct 18-character user ids (new random prefix per run: cold caches), ${PER_REQUEST} per request via /v1/events, closed loop with ${CONNECTIONS} connections (the collector's maximum), every event distinct (content-derived event ids differ), bench/lib/sender-main.ts in its own process.`,
    'Consumer at default settings. accepted events/s = accepted / (first 2xx -> last 2xx); consumer rows/s = rows / (first row landed -> last row landed), sampled every 1 s; the ratio is ~1 when the consumer keeps up, so the target is 0.95 (1 s sampling on each end of a short window).',
    'Lag = high watermark - committed offset from the broker (not the consumer gauge). Freshness probes as in scenario 3 (their events count in "accepted" for the landing check).',
  ];
  if (stalled) {
    notes.push(
      `**Stalled**: no new rows for ${stallS} s at ${round(stalled.t / 1000)} s into the run with ${stalled.rows.toLocaleString()} rows of ${stalled.accepted.toLocaleString()} accepted, broker lag ${stalled.lag.toLocaleString()}; sending stopped there. Consumer log: ${lastLines(consumerLog, 2)}`,
    );
  }
  return {
    id: '7',
    title: 'Many users: 1M distinct users through collector -> consumer, cold caches',
    notes,
    rows: [
      {
        case: stalled ? 'many users (STALLED)' : 'many users',
        values: {
          events: sent.accepted,
          users,
          'accepted events/s': round(acceptedPerS),
          'consumer rows/s': round(consumerPerS),
          'consumer/collector': round(acceptedPerS > 0 ? consumerPerS / acceptedPerS : 0, 2),
          'last 2xx -> all rows s': Number.isNaN(drainS) ? 'never' : round(drainS, 1),
          'fresh p50 ms': round(f.p50),
          'fresh p99 ms': round(f.p99),
          'max lag msgs': maxLag,
          'collector RSS MB': round(rssCollector.max() / MB),
          'consumer RSS MB': round(rssConsumer.max() / MB),
          'p99 ms': round(sent.okP99Ms),
          errors: sent.non2xx + sent.errors + sent.timeouts + sent.rejected + fresh.failed,
          'rows landed': rows,
        },
      },
    ],
    targets: [
      ratioTarget(
        'consumer rows/s vs collector accepted events/s (keeps up)',
        consumerPerS,
        acceptedPerS,
        0.95,
      ),
      landed,
      maxTarget('last 2xx -> every accepted event in fact_user_activity', drainS, 10, 's'),
    ],
    profiles: [],
  };
};
