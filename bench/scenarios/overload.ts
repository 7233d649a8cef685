/**
 * Scenario 8, overload (issue 10, "Overload and soak"): the collector alone (no consumer: the
 * question is what its intake does when offered more than it can take) in three phases on one
 * process: its maximum (closed loop, 100 connections, 100-event batches, as scenario 1), then an
 * open-loop offer of 2x that maximum (requests keep coming whatever the answers, as from many
 * independent clients), then straight away a normal rate of 0.5x.
 *
 * The promise: under 2x it sheds with 429/503 + Retry-After (no timeouts, no 5xx without
 * Retry-After, no socket errors), the requests it accepts keep p99 under 1 s, RSS stays near what
 * it was at its maximum, and the normal phase after it has no errors at all (it recovers by
 * itself, without a restart).
 *
 * A scenario of its own rather than part of 7: it needs no consumer, takes a minute, and mixing
 * shed traffic into 7 would blur 7's consumer measurements.
 */
import { type Ctx, freshTopic, maxTarget, type Row, type Scenario, type Target } from '../lib/context.ts';
import { MB, round, rssBytes, rssSampler } from '../lib/measure.ts';
import { metricPeaks } from '../lib/pipeline.ts';
import { startCollector } from '../lib/processes.ts';
import { type SenderOptions, type SenderResult, startSender } from '../lib/sender.ts';

const CONNECTIONS = 100;
const PER_REQUEST = 100;
/** An SDK gives up on a request after about this long (analytics SDKs use ~10 s). */
const SDK_TIMEOUT_MS = 10_000;
/**
 * The bench's own timeout, longer than the collector's KAFKA_PUBLISH_TIMEOUT_MS (10 s), so what the
 * collector itself answers is seen; answers slower than SDK_TIMEOUT_MS are counted apart.
 */
const CLIENT_TIMEOUT_MS = 30_000;
/** Open sockets the generator allows itself; a due request beyond them is counted as not sent. */
const MAX_IN_FLIGHT = 4_000;

interface Phase {
  readonly name: string;
  readonly offeredReqPerS: number | undefined;
  readonly r: SenderResult;
  readonly peakRssMb: number;
  /** Peak of the collector's own gauge of bytes waiting for Kafka (its KAFKA_MAX_QUEUED_BYTES cap). */
  readonly peakQueuedBytes: number;
}

const QUEUED = 'collector_kafka_queued_bytes';

type PhaseOptions =
  | { readonly mode: 'closed'; readonly connections: number }
  | { readonly mode: 'open'; readonly rate: number; readonly maxInFlight: number };

async function phase(
  ctx: Ctx,
  collector: { url: string; pid: number },
  name: string,
  durationS: number,
  load: PhaseOptions,
): Promise<Phase> {
  ctx.log(
    `  ${name}: ${load.mode === 'closed' ? `${load.connections} connections` : `${Math.round(load.rate)} req/s offered`}, ${durationS} s`,
  );
  const rss = rssSampler(collector.pid);
  const gauges = metricPeaks(collector.url, [QUEUED], 1_000);
  const options: SenderOptions = {
    ...load,
    url: `${collector.url}/v1/events`,
    perRequest: PER_REQUEST,
    users: 100_000,
    seqStart: 0,
    // No consumer reads these: reusing 64 bodies keeps the generator cheap enough to offer 2x.
    bodies: 'pool',
    durationS,
    timeoutMs: CLIENT_TIMEOUT_MS,
    slowMs: SDK_TIMEOUT_MS,
    progressMs: 5_000,
  };
  try {
    const r = await startSender(options).done;
    const peaks = gauges.stop();
    return {
      name,
      offeredReqPerS: load.mode === 'open' ? load.rate : undefined,
      r,
      peakRssMb: rss.max() / MB,
      peakQueuedBytes: peaks[QUEUED] ?? Number.NaN,
    };
  } finally {
    rss.stop();
    gauges.stop();
  }
}

const statusList = (s: Readonly<Record<string, number>>) =>
  Object.entries(s)
    .sort()
    .map(([code, n]) => `${code}: ${n}`)
    .join(', ');

/** Answers that are neither 2xx nor a 429/503 refusal. */
const otherStatuses = (s: Readonly<Record<string, number>>) =>
  Object.entries(s).reduce((n, [code, c]) => (/^(2..|429|503)$/.test(code) ? n : n + c), 0);

function row(p: Phase): Row {
  const r = p.r;
  return {
    case: p.name,
    values: {
      'offered req/s': p.offeredReqPerS === undefined ? 'closed loop' : round(p.offeredReqPerS),
      'sent req/s': round(r.requests / r.issueSeconds),
      '2xx req/s': round(r.ok / r.seconds),
      'events/s': round(r.accepted / r.seconds),
      'HTTP 429': r.statuses['429'] ?? 0,
      'HTTP 503': r.statuses['503'] ?? 0,
      'no Retry-After': r.retryAfterMissing,
      'other status': otherStatuses(r.statuses),
      [`slower than ${SDK_TIMEOUT_MS / 1000} s`]: r.slow,
      [`timeouts (${CLIENT_TIMEOUT_MS / 1000} s)`]: r.timeouts,
      'socket errors': r.errors,
      'not sent': r.notSent,
      '2xx p50 ms': round(r.okP50Ms),
      '2xx p99 ms': round(r.okP99Ms),
      '2xx max ms': round(r.okMaxMs),
      'all p99 ms': round(r.allP99Ms),
      'peak RSS MB': round(p.peakRssMb),
      'peak Kafka queue MB': round(p.peakQueuedBytes / MB, 1),
      'clean from s': cleanFrom(r),
    },
  };
}

/**
 * Seconds into the phase from which every later second's answers were all 2xx: how long the
 * collector took to recover ('never' when the last second still had failures).
 */
function cleanFrom(r: SenderResult): number | string {
  const bad = r.badPerSecond;
  let i = bad.length;
  while (i > 0 && (bad[i - 1] ?? 0) === 0) i--;
  return i > 0 && i >= r.okPerSecond.length ? 'never' : i;
}

function zeroTarget(name: string, count: number, what: string): Target {
  return {
    name,
    target: `0 ${what}`,
    measured: `${count} ${what}`,
    met: count === 0,
    margin: count === 0 ? 'none' : `${count} too many`,
  };
}

export const overloadScenario: Scenario = async (ctx) => {
  const maxS = ctx.quick ? 8 : 20;
  const overS = ctx.quick ? 15 : 60;
  const normalS = ctx.quick ? 10 : 30;
  const topic = await freshTopic(ctx, 'overload', 6);
  const collector = await startCollector({ kafkaBrokers: ctx.kafkaBrokers, topic });
  const phases: Phase[] = [];
  let restRssMb = 0;
  try {
    await new Promise((r) => setTimeout(r, 1_000));
    restRssMb = rssBytes(collector.pid) / MB;
    const max = await phase(ctx, collector, 'maximum (closed loop)', maxS, {
      mode: 'closed',
      connections: CONNECTIONS,
    });
    phases.push(max);
    const maxReqPerS = max.r.ok / max.r.seconds;
    phases.push(
      await phase(ctx, collector, '2x maximum (open loop)', overS, {
        mode: 'open',
        rate: 2 * maxReqPerS,
        maxInFlight: MAX_IN_FLIGHT,
      }),
    );
    phases.push(
      await phase(ctx, collector, '0.5x maximum right after', normalS, {
        mode: 'open',
        rate: 0.5 * maxReqPerS,
        maxInFlight: MAX_IN_FLIGHT,
      }),
    );
  } finally {
    await collector.stop();
  }
  const [max, over, after] = phases as [Phase, Phase, Phase];
  const o = over.r;
  const shed = (o.statuses['429'] ?? 0) + (o.statuses['503'] ?? 0);
  const bad = o.timeouts + o.slow + o.errors + otherStatuses(o.statuses) + o.retryAfterMissing;
  const a = after.r;
  return {
    id: '8',
    title: 'Overload: the collector at 2x its maximum, then back to normal',
    notes: [
      `One collector (default settings, RATE_LIMIT_MAX and RATE_LIMIT_PER_ADDRESS_MAX raised as in scenario 1), no consumer. Maximum = ${CONNECTIONS} connections closed loop for ${maxS} s; then ${overS} s open loop at 2x that many requests/s; then ${normalS} s at 0.5x straight away. ${PER_REQUEST}-event requests from 64 pre-built bodies (lib/sender-main.ts), client timeout ${CLIENT_TIMEOUT_MS / 1000} s (longer than the collector's 10 s publish timeout, to see its own answer), answers slower than ${SDK_TIMEOUT_MS / 1000} s counted apart (an SDK would have given up), at most ${MAX_IN_FLIGHT} open requests ("not sent" counts due requests beyond them).`,
      `Collector RSS at rest ${round(restRssMb)} MB. Statuses at 2x: ${statusList(o.statuses) || 'none'} (refusals and socket errors by code: ${statusList(o.codes) || 'none'}); after: ${statusList(a.statuses) || 'none'}.`,
      `At 2x: ${shed} requests shed (429/503), ${o.retryAfterMissing} of them without Retry-After, ${o.slow} answers slower than ${SDK_TIMEOUT_MS / 1000} s, ${o.timeouts} without an answer in ${CLIENT_TIMEOUT_MS / 1000} s, ${o.errors} socket errors; 2xx goodput ${round(o.ok / o.seconds)} req/s = ${round(o.ok / o.seconds / (max.r.ok / max.r.seconds), 2)} of the maximum.`,
    ],
    rows: phases.map(row),
    targets: [
      zeroTarget(
        `at 2x: refusals only as 429/503 + Retry-After (no answer slower than ${SDK_TIMEOUT_MS / 1000} s, timeout, other status, socket error)`,
        bad,
        'bad answers',
      ),
      maxTarget('at 2x: p99 of accepted requests', o.okP99Ms, 1_000, 'ms'),
      maxTarget(
        'during and after 2x: peak RSS / peak RSS at the maximum',
        Math.max(over.peakRssMb, after.peakRssMb) / max.peakRssMb,
        1.5,
        'x',
      ),
      zeroTarget(
        '0.5x right after: errors of any kind (recovers by itself)',
        a.non2xx + a.errors + a.timeouts,
        'errors',
      ),
    ],
    profiles: [],
  };
};
