/**
 * Scenario 7, many users (issue 10, reproduction 0): the real collector at its maximum rate
 * (closed loop, 100 connections, 500-event batches, every event distinct) with 1,000,000 distinct
 * 18-character user ids (`--quick`: 100,000), cold caches, into a real consumer. Does the consumer
 * keep up, and does every accepted event land?
 *
 * "Keeps up" compares, over one stretch of the run (from the first sample with a row landed to the
 * last sample before the last 2xx, samples every second), how fast rows grew in fact_user_activity
 * with how fast accepted events grew: ~1 when the consumer keeps pace, above 1 while it catches up,
 * below 1 when it falls behind, 0 when wedged. (Comparing two separate windows instead, first to
 * last 2xx against first to last row, charges the consumer its start-up and its last flush, which
 * dominate a short run.) A wedged consumer (rows stop growing while accepted events are missing,
 * for 60 s, quick 30 s) ends the scenario with the stall reported instead of hanging it.
 */
import { type Ctx, maxTarget, ratioTarget, type Scenario, type Target } from '../lib/context.ts';
import { probeFreshness } from '../lib/freshness.ts';
import { cpuSeconds, MB, pipelineCpu, round, rssSampler, summary } from '../lib/measure.ts';
import { distinctEventIds, factRows, type Sample, watchPipeline } from '../lib/pipeline.ts';
import { startPipeline } from '../lib/processes.ts';
import { type SenderResult, startSender } from '../lib/sender.ts';

const CONNECTIONS = 100;
const PER_REQUEST = 500;
/** The drain rate counts when the backlog at the last 2xx is at least this many seconds of intake. */
const DRAIN_MIN_S = 5;

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
  const drainLimitS = ctx.quick ? 180 : 600;
  let drainCut = false;
  const { db, topic, groupId, collector, consumer, admin } = await startPipeline(ctx, 'many');
  const rssCollector = rssSampler(collector.pid);
  const rssConsumer = rssSampler(consumer.pid);
  // Where the machine's CPU goes over the whole run (send and drain): the two services, ClickHouse,
  // Kafka (the only Java here while the bench runs), the sender, and the rest (the bench itself,
  // anything else on the machine).
  const cpuNow = () => pipelineCpu(collector.pid, consumer.pid);
  const cpuAtStart = cpuNow();
  let cpuUsed = { collector: 0, consumer: 0, clickhouse: 0, kafka: 0, sender: 0, rest: 0 };
  // The sender's process is gone by the end of the drain: its CPU is read while it runs.
  let senderCpu = 0;
  let probesAcked = 0;
  let stalled: Sample | undefined;
  let sent: SenderResult;
  let consumerLog = '';
  const watchStart = Date.now();
  const sender = startSender({
    mode: 'closed',
    connections: CONNECTIONS,
    // At its maximum the collector sheds (503 + Retry-After); senders that back off like an SDK get
    // the whole volume in, which is what this scenario measures the consumer against.
    backOff: true,
    url: `${collector.url}/v1/events`,
    perRequest: PER_REQUEST,
    users,
    seqStart: 0,
    bodies: 'distinct',
    events,
    timeoutMs: 30_000,
    progressMs: 1_000,
  });
  const senderCpuTimer = setInterval(() => {
    senderCpu = Math.max(senderCpu, cpuSeconds(sender.pid));
  }, 500);
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
    // After the last 2xx: wait until every accepted event (probes included) is a row, or a stall,
    // or the drain deadline (a slow but moving consumer must not hold the bench for an hour).
    const drainUntil = Date.now() + drainLimitS * 1000;
    while (watch.stalledAt() === undefined) {
      const s = watch.last();
      if (s && s.t > sent.endedAt - watchStart && s.rows >= sent.accepted + probesAcked) break;
      if (Date.now() > drainUntil) {
        drainCut = true;
        ctx.log(`  not drained ${drainLimitS} s after the last 2xx: ${s?.rows} rows, lag ${s?.lag}`);
        break;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    const end = cpuNow();
    const used = {
      collector: end.collector - cpuAtStart.collector,
      consumer: end.consumer - cpuAtStart.consumer,
      clickhouse: end.clickhouse - cpuAtStart.clickhouse,
      kafka: end.kafka - cpuAtStart.kafka,
      sender: senderCpu,
    };
    const named = used.collector + used.consumer + used.clickhouse + used.kafka + used.sender;
    cpuUsed = { ...used, rest: end.all - cpuAtStart.all - named };
    stalled = watch.stalledAt();
    if (stalled) {
      ctx.log(`  STALLED: ${stalled.rows} rows of ${stalled.accepted} accepted, lag ${stalled.lag}`);
      probing.abort();
    }
    await probes;
  } finally {
    clearInterval(senderCpuTimer);
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
  const allRowsMs = stalled ? undefined : reached(samples, expected);
  // The collector's own rate over its whole send; and both rates over the same stretch for the ratio.
  const sendS = (sent.lastOkAt - sent.firstOkAt) / 1000;
  const acceptedPerS = sendS > 0 ? sent.accepted / sendS : 0;
  const from = samples.find((s) => s.rows > 0);
  const to = samples.findLast((s) => s.t <= sent.lastOkAt - watchStart);
  const stretchS = from && to && to.t > from.t ? (to.t - from.t) / 1000 : 0;
  const consumerPerS = from && to && stretchS > 0 ? (to.rows - from.rows) / stretchS : 0;
  const offeredPerS = from && to && stretchS > 0 ? (to.accepted - from.accepted) / stretchS : 0;
  const drainS = allRowsMs === undefined ? Number.NaN : (watchStart + allRowsMs - sent.lastOkAt) / 1000;
  // The consumer's own rate (the collector idle) is only measurable with a backlog to work through:
  // a consumer that kept pace has a second of rows left at the last 2xx, landed in one or two flushes.
  const backlog = to ? expected - to.rows : 0;
  const drainMeasured = drainS > 0 && backlog >= DRAIN_MIN_S * acceptedPerS;
  const drainPerS = drainMeasured ? backlog / drainS : 0;
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
        : `${(expected - distinct).toLocaleString()} ${drainCut ? 'not landed yet when the scenario stopped waiting' : 'missing'} (${(((expected - distinct) / expected) * 100).toFixed(1)}%)`,
  };
  const notes = [
    `${events.toLocaleString()} events from ${users.toLocaleString()} distinct 18-character user ids (new random prefix per run: cold caches), ${PER_REQUEST} per request via /v1/events, closed loop with ${CONNECTIONS} connections (the collector's maximum), every event distinct (content-derived event ids differ), bench/lib/sender-main.ts in its own process.`,
    'Consumer at default settings. accepted events/s = accepted / (first 2xx -> last 2xx). The keep-up ratio compares rows landed with events accepted over the same stretch (first sample with a row landed -> last sample before the last 2xx, a sample a second): ~1 keeps pace, >1 catches up, <1 falls behind, 0 wedged. The target is 0.95, not 1, because rows land in batches of up to 10,000 (BATCH_MAX_ROWS) per flush, a few % of a full-size stretch; a --quick stretch is only seconds long and its ratio is coarse.',
    'CPU ms per 1k events: CPU seconds each service used from the start of sending to the end of the drain (/proc/<pid>/stat), per 1,000 accepted events, for the collector, the consumer, ClickHouse, Kafka and the sender; "rest" is the machine\'s other busy time over the same span (/proc/stat: the bench itself, anything else). Everything shares the machine\'s cores, so whether the consumer keeps up depends on the sum, not on the consumer alone.',
    'Lag = high watermark - committed offset from the broker (not the consumer gauge). Freshness probes as in scenario 3 (their events count in "accepted" for the landing check).',
  ];
  if (!drainMeasured && !Number.isNaN(drainS)) {
    notes.push(
      `The consumer's own rate (drain) is not measured: at the last 2xx ${backlog.toLocaleString()} accepted events had not landed, less than ${DRAIN_MIN_S} s of intake (the consumer kept pace); they landed ${round(drainS, 1)} s later.`,
    );
  }
  if (drainCut) {
    notes.push(
      `**Not drained**: ${drainLimitS} s after the last 2xx, ${rows.toLocaleString()} rows of ${expected.toLocaleString()} accepted had landed (the consumer was still moving; the scenario stops waiting there).`,
    );
  }
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
        case: stalled ? 'many users (STALLED)' : drainCut ? 'many users (not drained)' : 'many users',
        values: {
          events: sent.accepted,
          users,
          'accepted events/s': round(acceptedPerS),
          'accepted events/s, stretch': round(offeredPerS),
          'consumer rows/s, stretch': round(consumerPerS),
          'consumer/collector': round(offeredPerS > 0 ? consumerPerS / offeredPerS : 0, 2),
          // After the last 2xx the collector is idle: the consumer's rate with the machine (nearly) to itself.
          'consumer rows/s, drain': drainMeasured ? round(drainPerS) : 'n/a',
          'stretch s': round(stretchS),
          'last 2xx -> all rows s': Number.isNaN(drainS) ? 'never' : round(drainS, 1),
          'fresh p50 ms': round(f.p50),
          'fresh p99 ms': round(f.p99),
          'max lag msgs': maxLag,
          'CPU ms per 1k events: collector': round((cpuUsed.collector * 1e6) / expected, 1),
          consumer: round((cpuUsed.consumer * 1e6) / expected, 1),
          ClickHouse: round((cpuUsed.clickhouse * 1e6) / expected, 1),
          Kafka: round((cpuUsed.kafka * 1e6) / expected, 1),
          sender: round((cpuUsed.sender * 1e6) / expected, 1),
          rest: round((cpuUsed.rest * 1e6) / expected, 1),
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
        'consumer rows/s vs collector accepted events/s, both on the same cores (keeps up)',
        consumerPerS,
        offeredPerS,
        0.95,
      ),
      // The consumer's own ceiling (the collector idle) against the collector's maximum: above 1,
      // the consumer is not what limits the pipeline; the shared cores are (see the CPU columns).
      // Only when there was a backlog to measure it on (see the notes otherwise).
      ...(drainMeasured
        ? [
            ratioTarget(
              "consumer's own rate (drain) vs collector accepted events/s",
              drainPerS,
              acceptedPerS,
              1,
            ),
          ]
        : []),
      landed,
      maxTarget('last 2xx -> every accepted event in fact_user_activity', drainS, 10, 's'),
    ],
    profiles: [],
  };
};
