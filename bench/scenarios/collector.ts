/**
 * Scenario 1, collector intake: the real collector (validation, enrichment, Avro, acks=all Kafka)
 * under autocannon, single events and 100-event batches, against limit A (bare Fastify, parse and
 * 200), limit B (bare kafkajs producer, the same kind of Avro messages in the same batch sizes,
 * acks=all, the collector's default gzip) and limit K (Kafka's own Java producer, its
 * kafka-producer-perf-test, at the same message size and guarantees): what the broker on this
 * machine takes from a client that is not kafkajs. All in this run. CPU profiles of the collector
 * under each load (single events, batches) show where its time goes.
 */
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { CompressionTypes } from 'kafkajs';
import { java, mavenJars } from '../../deploy/local/stack.ts';
import {
  type Ctx,
  freshTopic,
  maxTarget,
  minTarget,
  type Row,
  ratioTarget,
  type Scenario,
} from '../lib/context.ts';
import { avroMessages, nativeBodies, REQUEST_HEADERS } from '../lib/data.ts';
import { autocannon, type LoadResult } from '../lib/load.ts';
import { MB, round, rssBytes, rssSampler } from '../lib/measure.ts';
import { freePort, startCollector, startNode } from '../lib/processes.ts';
import { newestProfile, summariseProfile } from '../lib/profile.ts';

const CONNECTIONS = 100;
const SIZES = [1, 100] as const;

interface Measured {
  readonly load: LoadResult;
  readonly perRequest: number;
  readonly rssMb: number;
}

async function loadService(
  ctx: Ctx,
  url: string,
  pid: number,
  perRequest: number,
  durationS: number,
): Promise<Measured> {
  const rss = rssSampler(pid);
  try {
    const [body = ''] = nativeBodies(1, perRequest);
    const load = await autocannon({
      url: `${url}/v1/events`,
      body,
      headers: REQUEST_HEADERS,
      connections: CONNECTIONS,
      durationS,
      workDir: ctx.outDir,
    });
    return { load, perRequest, rssMb: rss.max() / MB };
  } finally {
    rss.stop();
  }
}

/** Limit B: CONNECTIONS concurrent send loops of `perSend` messages each, acks=all, for `durationS`. */
async function bareProducer(ctx: Ctx, topic: string, perSend: number, durationS: number) {
  const producer = ctx.kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const pool = avroMessages(1_000);
  const latencies: number[] = [];
  let sent = 0;
  let errors = 0;
  const started = performance.now();
  const until = started + durationS * 1000;
  const loop = async (worker: number) => {
    for (let i = worker; performance.now() < until; i += CONNECTIONS) {
      const from = (i * perSend) % pool.length;
      const messages = pool.slice(from, from + perSend);
      const t = performance.now();
      try {
        await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages });
        sent += messages.length;
        latencies.push(performance.now() - t);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, (_, w) => loop(w)));
  const seconds = (performance.now() - started) / 1000;
  await producer.disconnect();
  latencies.sort((a, b) => a - b);
  const at = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0;
  return {
    eventsPerS: sent / seconds,
    sendsPerS: latencies.length / seconds,
    p50: at(0.5),
    p99: at(0.99),
    errors,
  };
}

interface PerfTool {
  readonly eventsPerS: number;
  readonly p50: number;
  readonly p99: number;
}

/**
 * Limit K: Kafka's producer performance tool (org.apache.kafka.tools.ProducerPerformance, the jar
 * the stack already fetches) with acks=all, idempotence and gzip like the collector, records of
 * the mean Avro message size. It takes a record count, not a duration: `records` should last
 * about as long as the other cases. Its payload is random letters and its records have no key
 * (sticky partitioning): gzip finds them about as compressible as Avro's field values, and
 * keying only moves which partition a batch goes to.
 */
async function kafkaPerfTool(
  ctx: Ctx,
  topic: string,
  recordSize: number,
  records: number,
): Promise<PerfTool> {
  const libs = mavenJars('kafka', ctx.log);
  const { stdout } = await promisify(execFile)(
    java(),
    [
      '-Xmx512m',
      '-cp',
      `${libs}/*`,
      'org.apache.kafka.tools.ProducerPerformance',
      '--bootstrap-server',
      ctx.kafkaBrokers,
      '--topic',
      topic,
      '--num-records',
      String(records),
      '--record-size',
      String(recordSize),
      '--throughput',
      '-1',
      '--command-property',
      'acks=all',
      'enable.idempotence=true',
      'compression.type=gzip',
    ],
    { maxBuffer: 16 * MB },
  );
  // The last line: "N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency,
  // P ms 50th, Q ms 95th, S ms 99th, T ms 99.9th."
  const last = stdout.trim().split('\n').at(-1) ?? '';
  const m = /([\d.]+) records\/sec.* ([\d.]+) ms 50th, [\d.]+ ms 95th, ([\d.]+) ms 99th/.exec(last);
  if (!m) throw new Error(`kafka-producer-perf-test printed no summary: ${last}`);
  return { eventsPerS: Number(m[1]), p50: Number(m[2]), p99: Number(m[3]) };
}

function row(name: string, m: Measured): Row {
  return {
    case: name,
    values: {
      'events/s': round(m.load.okPerS * m.perRequest),
      'req/s': round(m.load.okPerS),
      'p50 ms': m.load.p50Ms,
      'p99 ms': m.load.p99Ms,
      'RSS MB': round(m.rssMb),
      'non-2xx': m.load.non2xx,
      errors: m.load.errors + m.load.timeouts,
    },
  };
}

export const collectorScenario: Scenario = async (ctx) => {
  const durationS = ctx.quick ? 5 : 20;
  const rows: Row[] = [];
  const ours = new Map<number, Measured>();
  const limitA = new Map<number, Measured>();
  const limitB = new Map<number, Awaited<ReturnType<typeof bareProducer>>>();

  const topic = await freshTopic(ctx, 'collector', 6);
  const collector = await startCollector({ kafkaBrokers: ctx.kafkaBrokers, topic });
  // The baseline before any request: what the process holds at rest (code, geo databases, clients).
  await sleep(1_000);
  const idleRssMb = rssBytes(collector.pid) / MB;
  try {
    for (const n of SIZES) {
      ctx.log(`  collector, ${n} event(s)/request, ${durationS} s`);
      ours.set(n, await loadService(ctx, collector.url, collector.pid, n, durationS));
    }
  } finally {
    await collector.stop();
  }
  // The same, with the city geo database the collector loaded before GEO_DATABASE existed: what
  // the default (country) saves, at rest and under the batch load.
  const city = await startCollector({ kafkaBrokers: ctx.kafkaBrokers, topic, env: { GEO_DATABASE: 'city' } });
  await sleep(1_000);
  const cityIdleRssMb = rssBytes(city.pid) / MB;
  let cityBatch: Measured;
  try {
    ctx.log(`  collector with GEO_DATABASE=city, 100 events/request, ${durationS} s`);
    cityBatch = await loadService(ctx, city.url, city.pid, 100, durationS);
  } finally {
    await city.stop();
  }

  const port = await freePort();
  const bare = await startNode('bare-fastify', 'bench/limits/bare-fastify.ts', {
    env: { PORT: String(port) },
    readyUrl: `http://127.0.0.1:${port}/healthz`,
  });
  try {
    for (const n of SIZES) {
      ctx.log(`  limit A (bare Fastify), ${n} event(s)/request`);
      limitA.set(n, await loadService(ctx, `http://127.0.0.1:${port}`, bare.pid, n, durationS));
    }
  } finally {
    await bare.stop();
  }

  const topicB = await freshTopic(ctx, 'limit-b', 6);
  for (const n of SIZES) {
    ctx.log(`  limit B (bare kafkajs producer), ${n} message(s)/send`);
    limitB.set(n, await bareProducer(ctx, topicB, n, durationS));
  }

  const topicK = await freshTopic(ctx, 'limit-k', 6);
  const pool = avroMessages(1_000);
  const recordSize = Math.round(pool.reduce((n, m) => n + (m.value?.length ?? 0), 0) / pool.length);
  const bBatch = limitB.get(100)?.eventsPerS ?? 50_000;
  ctx.log(`  limit K (kafka-producer-perf-test), ${recordSize}-byte records`);
  const limitK = await kafkaPerfTool(
    ctx,
    topicK,
    recordSize,
    Math.max(200_000, Math.round(2 * bBatch * durationS)),
  );

  rows.push({ case: 'collector at rest, before load', values: { 'RSS MB': round(idleRssMb) } });
  rows.push({ case: 'collector at rest, GEO_DATABASE=city', values: { 'RSS MB': round(cityIdleRssMb) } });
  rows.push(row('collector, batch 100, GEO_DATABASE=city', cityBatch));
  for (const n of SIZES) {
    const label = n === 1 ? 'single' : `batch ${n}`;
    const o = ours.get(n) as Measured;
    const a = limitA.get(n) as Measured;
    const b = limitB.get(n) as Awaited<ReturnType<typeof bareProducer>>;
    rows.push(row(`collector, ${label}`, o));
    rows.push(row(`limit A bare Fastify, ${label}`, a));
    rows.push({
      case: `limit B bare kafkajs, ${label}`,
      values: {
        'events/s': round(b.eventsPerS),
        'req/s': round(b.sendsPerS),
        'p50 ms': round(b.p50, 1),
        'p99 ms': round(b.p99, 1),
        errors: b.errors,
      },
    });
    rows.push({
      case: `ratio collector/A, ${label}`,
      values: { 'req/s': round(o.load.okPerS / a.load.okPerS, 3) },
    });
    rows.push({
      case: `ratio collector/B, ${label}`,
      values: { 'events/s': round((o.load.okPerS * n) / b.eventsPerS, 3) },
    });
  }

  const batch = ours.get(100) as Measured;
  rows.push({
    case: 'limit K kafka-producer-perf-test (Java)',
    values: { 'events/s': round(limitK.eventsPerS), 'p50 ms': limitK.p50, 'p99 ms': limitK.p99 },
  });
  rows.push({ case: 'ratio B/K, batch 100', values: { 'events/s': round(bBatch / limitK.eventsPerS, 3) } });
  rows.push({
    case: 'ratio collector/K, batch 100',
    values: { 'events/s': round((batch.load.okPerS * 100) / limitK.eventsPerS, 3) },
  });
  const single = ours.get(1) as Measured;
  ctx.shared.set('collector.batchReqPerS', batch.load.okPerS);
  const targets = [
    ratioTarget(
      'collector 100-event batches vs limit K (events/s)',
      batch.load.okPerS * 100,
      limitK.eventsPerS,
      0.5,
    ),
    ratioTarget(
      'collector 100-event batches vs limit B (events/s)',
      batch.load.okPerS * 100,
      limitB.get(100)?.eventsPerS ?? 0,
      0.5,
    ),
    minTarget('collector 100-event batches, moonshot', batch.load.okPerS * 100, 100_000, 'events/s'),
    ratioTarget(
      'collector single events vs limit A (req/s)',
      single.load.okPerS,
      limitA.get(1)?.load.okPerS ?? 0,
      0.5,
    ),
    maxTarget('collector RSS at max load', Math.max(single.rssMb, batch.rssMb), 250, 'MB'),
  ];

  // Where the time goes: each load (single events, then batches) against its own collector started
  // with --cpu-prof, so the single-event path has a profile of its own.
  const profileSeconds = ctx.quick ? 3 : 8;
  const profiles = [];
  for (const n of SIZES) {
    const profileDir = join(ctx.outDir, 'profiles', `collector-${n}`);
    mkdirSync(profileDir, { recursive: true });
    const profiled = await startCollector({ kafkaBrokers: ctx.kafkaBrokers, topic, profileDir });
    try {
      await loadService(ctx, profiled.url, profiled.pid, n, profileSeconds);
    } finally {
      await profiled.stop();
    }
    const file = newestProfile(profileDir);
    if (file)
      profiles.push({
        what: `collector under ${profileSeconds} s of ${n === 1 ? 'single-event' : `${n}-event`} load (node --cpu-prof)`,
        summary: summariseProfile(file),
      });
  }
  return {
    id: '1',
    title: 'Collector intake',
    notes: [
      `autocannon CLI, ${CONNECTIONS} connections, no pipelining, ${durationS} s per case, on this machine (load generator shares the 2 cores).`,
      'Limit B: bare kafkajs producer, acks=all, gzip (the collector default), not idempotent, ' +
        `${CONNECTIONS} concurrent send loops of the same batch size; messages shaped like the collector's enriched output.`,
      `Limit K: Kafka's own Java producer (kafka-producer-perf-test from kafka-tools), acks=all, idempotent, gzip, ` +
        'unthrottled, records of the mean Avro message size, no keys; one process, default batching (linger.ms 5, batch.size 16 KB).',
      'The collector runs with RATE_LIMIT_MAX and RATE_LIMIT_PER_ADDRESS_MAX raised (one write key from one address sends everything); all other settings default.',
    ],
    rows,
    targets,
    profiles,
  };
};
