/**
 * `npm run test:soak` (issue 10, "Overload and soak"): on a PRIVATE Kafka + ClickHouse, measures the
 * collector's maximum (closed loop, 100 connections, 100-event batches, on a throwaway topic), then
 * runs collector -> Kafka -> consumer -> ClickHouse for SOAK_MINUTES at SOAK_LOAD_PERCENT of it
 * (open loop, every event distinct) and samples both processes' RSS, the broker lag, rows and
 * errors every SOAK_SAMPLE_SECONDS.
 *
 * Passes when, after the warm-up: RSS grows under 10% (median of the minute after warm-up against
 * the median of the last minute, so one GC sawtooth is not a trend), there are zero errors (HTTP,
 * socket, timeouts, rejected events, failed inserts, dead letters), lag stays bounded (never more
 * than 10 s of the offered events) and every accepted event is in fact_user_activity once.
 *
 * Writes bench/out/soak-<date>/soak.json and rewrites bench/SOAK.md from it (RESULTS.md links there,
 * so a bench re-render keeps the soak result); `--render <soak.json>` re-renders SOAK.md only.
 * Exit code 1 when it fails.
 */
import { execSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { privateStack } from '../deploy/local/private-stack.ts';
import { type ConfigOf, int, readConfig } from '../services/lib/config.ts';
import { benchKafka, type Ctx, freshTopic } from './lib/context.ts';
import { MB, round } from './lib/measure.ts';
import { distinctEventIds, factRows, type Sample, watchPipeline } from './lib/pipeline.ts';
import { ROOT, startCollector, startPipeline } from './lib/processes.ts';
import { type SenderResult, startSender } from './lib/sender.ts';

const SOAK_CONFIG = {
  SOAK_MINUTES: int('minutes of steady load', 30, 1, 24 * 60),
  SOAK_WARMUP_MINUTES: int('minutes before RSS growth is measured (at most a third of the run)', 5, 0),
  SOAK_LOAD_PERCENT: int("offered load, percent of the collector's measured maximum", 50, 1, 100),
  SOAK_SAMPLE_SECONDS: int('seconds between samples', 5, 1, 600),
  // A user base bigger than one consumer batch, so look-ups are chunked and caches churn at first,
  // but well inside the consumer's caches (CACHE_MAX_ENTRIES): the soak is about leaks and
  // stability at steady state; bench scenario 7 measures a cold, million-user base.
  SOAK_USERS: int('distinct users the events cycle through', 100_000, 1),
  SOAK_MAX_SECONDS: int("seconds of closed-loop load that measure the collector's maximum", 20, 3, 600),
};

const CONNECTIONS = 100;
const PER_REQUEST = 100;
const RSS_GROWTH_MAX = 0.1;
/** Lag is bounded when it never holds more than this many seconds of the offered events. */
const LAG_BOUND_S = 10;

interface Criterion {
  readonly name: string;
  readonly target: string;
  readonly measured: string;
  readonly met: boolean;
}

export interface SoakReport {
  readonly date: string;
  readonly command: string;
  readonly machine: Readonly<Record<string, string | number>>;
  readonly config: ConfigOf<typeof SOAK_CONFIG>;
  readonly maxReqPerS: number;
  readonly offeredReqPerS: number;
  readonly warmupS: number;
  readonly sent: SenderResult;
  readonly rows: number;
  readonly distinctEvents: number;
  readonly drainS: number;
  readonly criteria: readonly Criterion[];
  readonly passed: boolean;
  readonly samples: readonly Sample[];
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : (s[Math.floor((s.length - 1) / 2)] as number);
};

/** Median RSS (bytes) of one process over the samples with `from <= t < to` (ms). */
function rssMedian(
  samples: readonly Sample[],
  key: 'collectorRss' | 'consumerRss',
  from: number,
  to: number,
) {
  return median(samples.filter((s) => s.t >= from && s.t < to && s[key] > 0).map((s) => s[key]));
}

function verdict(o: {
  samples: readonly Sample[];
  warmupS: number;
  sendEndMs: number;
  offeredEventsPerS: number;
  sent: SenderResult;
  rows: number;
  distinctEvents: number;
  drainS: number;
}): Criterion[] {
  const out: Criterion[] = [];
  const warmMs = o.warmupS * 1000;
  for (const [key, name] of [
    ['collectorRss', 'collector'],
    ['consumerRss', 'consumer'],
  ] as const) {
    const base = rssMedian(o.samples, key, warmMs, warmMs + 60_000);
    const end = rssMedian(o.samples, key, o.sendEndMs - 60_000, o.sendEndMs);
    const growth = end / base - 1;
    out.push({
      name: `${name} RSS growth after warm-up`,
      target: `< ${RSS_GROWTH_MAX * 100}%`,
      measured: `${(growth * 100).toFixed(1)}% (${round(base / MB)} -> ${round(end / MB)} MB, medians of the first minute after warm-up and the last minute)`,
      met: growth < RSS_GROWTH_MAX,
    });
  }
  const last = o.samples.at(-1);
  const errors = o.sent.non2xx + o.sent.errors + o.sent.timeouts + o.sent.rejected + o.sent.notSent;
  const insertErrors = last?.insertErrors ?? Number.NaN;
  const deadLettered = last?.deadLettered ?? Number.NaN;
  out.push({
    name: 'errors',
    target: '0',
    measured: `HTTP non-2xx ${o.sent.non2xx}, socket ${o.sent.errors}, timeouts ${o.sent.timeouts}, rejected events ${o.sent.rejected}, not sent ${o.sent.notSent}, failed inserts ${insertErrors}, dead-lettered ${deadLettered}`,
    met: errors === 0 && insertErrors === 0 && deadLettered === 0,
  });
  const lagBound = LAG_BOUND_S * o.offeredEventsPerS;
  const lags = o.samples.filter((s) => s.t >= warmMs && !Number.isNaN(s.lag)).map((s) => s.lag);
  const maxLag = Math.max(0, ...lags);
  out.push({
    name: 'lag after warm-up (broker: high watermark - committed)',
    target: `<= ${round(lagBound).toLocaleString()} messages (${LAG_BOUND_S} s of offered events), and drained after the load`,
    measured: `max ${maxLag.toLocaleString()}; drained ${Number.isNaN(o.drainS) ? 'never' : `${round(o.drainS, 1)} s after the last 2xx`}`,
    met: lags.length > 0 && maxLag <= lagBound && !Number.isNaN(o.drainS),
  });
  // Counted once = one distinct event id per event: rows beyond that are re-deliveries, which the
  // fact table's ReplacingMergeTree collapses and every query counts once. An event id beyond the
  // accepted ones is an event whose request was answered 503 or timed out after its publish went
  // through (at-least-once; an SDK retries it with the same id), so "at least" is the bound, and it
  // is exact when no request was refused.
  out.push({
    name: 'every accepted event in fact_user_activity, counted once',
    target: `>= ${o.sent.accepted.toLocaleString()} distinct event ids`,
    measured: `${o.distinctEvents.toLocaleString()} distinct (${o.rows.toLocaleString()} rows before merges collapse re-deliveries)`,
    met: o.distinctEvents >= o.sent.accepted,
  });
  return out;
}

function table(header: readonly string[], body: readonly (readonly string[])[]): string[] {
  return [
    `| ${header.join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...body.map((r) => `| ${r.join(' | ')} |`),
  ];
}

const mb = (bytes: number | undefined): string =>
  bytes === undefined || Number.isNaN(bytes) ? 'n/a' : String(round(bytes / MB));

/** About one row per minute of the samples (every sample for short runs). */
function sampleRows(r: SoakReport): string[][] {
  const every = Math.max(1, Math.round(60 / r.config.SOAK_SAMPLE_SECONDS));
  return r.samples
    .filter((_, i) => i % every === 0 || i === r.samples.length - 1)
    .map((s) => [
      String(round(s.t / 1000)),
      s.accepted.toLocaleString(),
      s.rows.toLocaleString(),
      Number.isNaN(s.lag) ? 'n/a' : s.lag.toLocaleString(),
      `${round(s.collectorRss / MB)} (${mb(s.heap?.collector)} / ${mb(s.external?.collector)})`,
      `${round(s.consumerRss / MB)} (${mb(s.heap?.consumer)} / ${mb(s.external?.consumer)})`,
      String(s.errors),
      `${s.insertErrors} / ${s.deadLettered}`,
    ]);
}

const SAMPLE_HEADER = [
  's',
  'accepted',
  'rows',
  'lag msgs',
  'collector RSS MB (V8 heap / external)',
  'consumer RSS MB (V8 heap / external)',
  'HTTP errors',
  'insert errors / DLQ',
];

const CPU_PARTS = ['collector', 'consumer', 'clickhouse', 'kafka'] as const;

/** Cores each part kept busy between two samples, the rest of the machine, and iowait. */
function cpuBetween(a: Sample, b: Sample): string[] {
  const s = (b.t - a.t) / 1000;
  if (a.cpu === undefined || b.cpu === undefined || s <= 0) return ['n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a'];
  const parts = CPU_PARTS.map((k) => (b.cpu[k] - a.cpu[k]) / s);
  const all = (b.cpu.all - a.cpu.all) / s;
  const rest = all - parts.reduce((x, y) => x + y, 0);
  return [...parts, rest, (b.cpu.iowait - a.cpu.iowait) / s].map((c) => c.toFixed(2));
}

/**
 * Where the machine's CPU went: over the whole soak, and in the samples around each burst of
 * errors (one before it to the first without new errors), so a failed soak says what the stall
 * was busy with.
 */
function cpuRows(r: SoakReport): string[][] {
  const s = r.samples;
  const first = s[0];
  const last = s.at(-1);
  if (first === undefined || last === undefined) return [];
  const rows = [['whole run', ...cpuBetween(first, last)]];
  for (let i = 1; i < s.length; i++) {
    const prev = s[i - 1] as Sample;
    const cur = s[i] as Sample;
    if (cur.errors <= prev.errors) continue;
    let end = i;
    while (end + 1 < s.length && (s[end + 1] as Sample).errors > (s[end] as Sample).errors) end++;
    const from = s[Math.max(0, i - 2)] as Sample;
    const to = s[Math.min(s.length - 1, end + 1)] as Sample;
    rows.push([
      `${round(from.t / 1000)}-${round(to.t / 1000)} s: ${(s[end] as Sample).errors - prev.errors} errors`,
      ...cpuBetween(from, to),
    ]);
    i = end;
  }
  return rows;
}

export function renderSoak(r: SoakReport): string {
  const m = r.machine;
  return `${[
    '# Soak results',
    '',
    `Produced by \`${r.command}\` (bench/soak.ts) on ${r.date}: **${r.passed ? 'passed' : 'FAILED'}**.`,
    `${r.config.SOAK_MINUTES} minutes at ${r.config.SOAK_LOAD_PERCENT}% of the collector's maximum measured in the same run`,
    `(${round(r.maxReqPerS)} req/s of ${PER_REQUEST} events, closed loop, ${CONNECTIONS} connections), offered open loop:`,
    `${round(r.offeredReqPerS)} req/s = ${round(r.offeredReqPerS * PER_REQUEST).toLocaleString()} events/s, every event distinct, users cycling over ${r.config.SOAK_USERS.toLocaleString()};`,
    `collector -> Kafka -> consumer -> ClickHouse, default settings, on a private stack; a sample every ${r.config.SOAK_SAMPLE_SECONDS} s; warm-up ${round(r.warmupS)} s.`,
    '',
    `Machine: ${m.nproc} cores, ${m.cpu}, Node ${m.node}, load average ${m.loadBefore} before and ${m.loadAfter} after (other work shares this machine), code ${m.revision}.`,
    '',
    '## Verdict',
    '',
    ...(r.warmupS < r.config.SOAK_WARMUP_MINUTES * 60
      ? [
          `A short run: its warm-up was cut to a third of it (${round(r.warmupS)} s instead of ${r.config.SOAK_WARMUP_MINUTES} min), so RSS growth here may still be the heap settling rather than a leak; the ${r.config.SOAK_WARMUP_MINUTES}-minute warm-up of a 30-minute run is what the criterion is for.`,
          '',
        ]
      : []),
    ...table(
      ['criterion', 'target', 'measured', 'met'],
      r.criteria.map((c) => [c.name, c.target, c.measured, c.met ? 'yes' : '**no**']),
    ),
    '',
    `Sent ${r.sent.requests.toLocaleString()} requests in ${round(r.sent.seconds)} s, ${r.sent.accepted.toLocaleString()} events accepted; 2xx p50 ${round(r.sent.okP50Ms)} ms, p99 ${round(r.sent.okP99Ms)} ms, max ${round(r.sent.okMaxMs)} ms.`,
    '',
    '## Samples (about one a minute)',
    '',
    ...table(SAMPLE_HEADER, sampleRows(r)),
    '',
    `## Where the CPU went (cores busy, of ${r.machine.nproc})`,
    '',
    ...table(['window', ...CPU_PARTS, 'rest (sender, bench, other)', 'iowait'], cpuRows(r)),
    '',
    'Every sample is in the JSON next to the run (bench/out/soak-*/soak.json, git-ignored).',
    '',
  ].join('\n')}`;
}

const { values: args } = parseArgs({ options: { render: { type: 'string' } } });
const soakMd = join(ROOT, 'bench', 'SOAK.md');
if (args.render !== undefined) {
  writeFileSync(soakMd, renderSoak(JSON.parse(readFileSync(args.render, 'utf8')) as SoakReport));
  process.exit(0);
}

const config = readConfig(SOAK_CONFIG, process.env);
const started = new Date();
const outDir = join(ROOT, 'bench', 'out', `soak-${started.toISOString().replace(/[:.]/g, '-')}`);
mkdirSync(outDir, { recursive: true });
const log = (line: string) => process.stderr.write(`[soak] ${line}\n`);
const sh = (cmd: string) => {
  try {
    return execSync(cmd, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
};
const loadBefore = loadavg()
  .map((l) => l.toFixed(1))
  .join(' ');
const durationS = config.SOAK_MINUTES * 60;
const warmupS = Math.min(config.SOAK_WARMUP_MINUTES * 60, durationS / 3);

const stack = await privateStack('soak', log);
let report: SoakReport | undefined;
try {
  log('starting private Kafka + ClickHouse');
  await Promise.all([stack.startKafka(), stack.startClickhouse()]);
  const ctx: Ctx = {
    quick: false,
    kafkaBrokers: stack.kafkaBrokers,
    clickhouseUrl: stack.clickhouseUrl,
    outDir,
    kafka: benchKafka(stack.kafkaBrokers),
    log,
    shared: new Map(),
  };

  // The maximum, on a topic nobody consumes: its events must not become the soak's backlog.
  const maxTopic = await freshTopic(ctx, 'soak-max', 6);
  const probe = await startCollector({ kafkaBrokers: ctx.kafkaBrokers, topic: maxTopic });
  let maxReqPerS: number;
  try {
    log(`collector maximum: ${CONNECTIONS} connections, ${config.SOAK_MAX_SECONDS} s`);
    const max = await startSender({
      mode: 'closed',
      connections: CONNECTIONS,
      url: `${probe.url}/v1/events`,
      perRequest: PER_REQUEST,
      users: config.SOAK_USERS,
      seqStart: 0,
      bodies: 'pool',
      durationS: config.SOAK_MAX_SECONDS,
      timeoutMs: 30_000,
      progressMs: 5_000,
    }).done;
    maxReqPerS = max.ok / max.seconds;
  } finally {
    await probe.stop();
  }
  const offeredReqPerS = (maxReqPerS * config.SOAK_LOAD_PERCENT) / 100;
  log(
    `maximum ${round(maxReqPerS)} req/s; soaking ${config.SOAK_MINUTES} min at ${round(offeredReqPerS)} req/s`,
  );

  const { db, topic, groupId, collector, consumer, admin } = await startPipeline(ctx, 'soak');
  const watchStart = Date.now();
  const sender = startSender({
    mode: 'open',
    rate: offeredReqPerS,
    maxInFlight: 2_000,
    url: `${collector.url}/v1/events`,
    perRequest: PER_REQUEST,
    users: config.SOAK_USERS,
    seqStart: 0,
    bodies: 'distinct',
    durationS,
    timeoutMs: 10_000,
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
    consumerUrl: consumer.url,
    collectorUrl: collector.url,
    progress: sender.progress,
    everyMs: config.SOAK_SAMPLE_SECONDS * 1000,
    stallMs: 120_000,
  });
  let sent: SenderResult;
  let drainS = Number.NaN;
  try {
    const progress = setInterval(() => {
      const s = watch.last();
      if (s)
        log(
          `${round(s.t / 1000)} s: accepted ${s.accepted}, rows ${s.rows}, lag ${s.lag}, RSS collector ${round(s.collectorRss / MB)} MB consumer ${round(s.consumerRss / MB)} MB, errors ${s.errors}`,
        );
      if (watch.stalledAt() !== undefined) sender.stop();
    }, 60_000);
    sent = await sender.done;
    clearInterval(progress);
    // Drain: every accepted event a row, bounded by the stall detector.
    while (watch.stalledAt() === undefined) {
      const n = await factRows(ctx.clickhouseUrl, db.name).catch(() => 0);
      if (n >= sent.accepted) {
        drainS = (Date.now() - sent.lastOkAt) / 1000;
        break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    // One more sample after the drain, so the final consumer counters are in.
    await new Promise((r) => setTimeout(r, config.SOAK_SAMPLE_SECONDS * 1000 + 500));
  } finally {
    watch.stop();
    await admin.disconnect();
    await collector.stop();
    await consumer.stop(5_000);
  }
  const rows = await factRows(ctx.clickhouseUrl, db.name);
  const distinctEvents = await distinctEventIds(ctx.clickhouseUrl, db.name, rows);
  const samples = [...watch.samples];
  const criteria = verdict({
    samples,
    warmupS,
    sendEndMs: sent.endedAt - watchStart,
    offeredEventsPerS: offeredReqPerS * PER_REQUEST,
    sent,
    rows,
    distinctEvents,
    drainS,
  });
  const cpu = cpus()[0];
  report = {
    date: started.toISOString(),
    command: `SOAK_MINUTES=${config.SOAK_MINUTES} npm run test:soak`,
    machine: {
      nproc: cpus().length,
      cpu: cpu?.model ?? 'unknown',
      node: process.version,
      revision: sh('git rev-parse --short HEAD'),
      loadBefore,
      loadAfter: loadavg()
        .map((l) => l.toFixed(1))
        .join(' '),
    },
    config: { ...config },
    maxReqPerS,
    offeredReqPerS,
    warmupS,
    sent,
    rows,
    distinctEvents,
    drainS,
    criteria,
    passed: criteria.every((c) => c.met),
    samples,
  };
} finally {
  log('destroying the private stack');
  await stack.destroy();
}

if (report === undefined) throw new Error('soak: no report');
writeFileSync(join(outDir, 'soak.json'), `${JSON.stringify(report, null, 2)}\n`);
const md = renderSoak(report);
writeFileSync(soakMd, md);
process.stdout.write(md);
log(`wrote bench/SOAK.md and ${join('bench', 'out', outDir.split('/').at(-1) ?? '', 'soak.json')}`);
process.exit(report.passed ? 0 : 1);
