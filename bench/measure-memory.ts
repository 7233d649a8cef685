/**
 * Where a service's resident memory goes under load, for each of several process settings in one
 * run (docs/SCALING.md "Memory" records the numbers). For each variant it starts the service as the
 * bench does (bench/lib/processes.ts, so deploy/process-env.ts applies unless a variant overrides
 * it), loads it, and reports the peak RSS with what filled it at that moment:
 *   - from /proc/<pid>/smaps: V8's heap pages (anonymous mappings under 1 MB), glibc's main heap
 *     ([heap]), larger anonymous mappings (mmapped blocks, thread arenas), the node binary's pages;
 *   - from the service's /metrics: V8 heap committed and used, per space, and external memory;
 *   - CPU microseconds per event (row), so a setting that saves memory by working harder shows.
 *
 *   node bench/measure-memory.ts collector [seconds=20] [req/s=40]   100-event batches, 100 connections
 *   node bench/measure-memory.ts consumer [rows=200000] [gzip]       drains a pre-filled topic
 * (`gzip`: the topic is filled as the collector fills it, gzip-compressed 500 messages at a time,
 * so a fetch's FETCH_MAX_BYTES of compressed batches decompresses to several times that)
 * with KAFKA_BROKERS and CLICKHOUSE_URL (a running stack, e.g. `npm run up`), and VARIANTS: a JSON
 * array of env objects on top of the service's (default `[{}]`; null unsets a variable), e.g.
 *   VARIANTS='[{"NODE_OPTIONS":null,"MALLOC_MMAP_THRESHOLD_":null},{}]'   defaults against the project's settings
 * A consumer variant's `"baseline": "<git rev>"` (not an env variable) runs that revision's consumer
 * (bench/scenarios/consumer-users.ts's checkout), for before/after in one run.
 * HEAP_SNAPSHOT_AT_S=n: a heap snapshot of each variant n seconds into its load (written into the
 * repository root by --heapsnapshot-signal; it forces a full GC, so that sample's numbers are not
 * comparable).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { CompressionTypes } from 'kafkajs';
import { uniqueName } from '../deploy/local/private-stack.ts';
import { SERVICE_PROCESS_ENV } from '../deploy/process-env.ts';
import { produce } from '../test/fixtures/kafka.ts';
import { benchKafka, type Ctx, freshTopic, migratedDatabase } from './lib/context.ts';
import { avroMessages, nativeBodies, REQUEST_HEADERS } from './lib/data.ts';
import { autocannon } from './lib/load.ts';
import { cpuSeconds, MB } from './lib/measure.ts';
import { type Child, startCollector, startConsumer } from './lib/processes.ts';
import { checkout } from './scenarios/consumer-users.ts';

const [service = '', a1, a2] = process.argv.slice(2);
if (service !== 'collector' && service !== 'consumer') {
  process.stderr.write(
    'usage: node bench/measure-memory.ts collector [seconds] [req/s] | consumer [rows] [gzip]\n',
  );
  process.exit(2);
}
const brokers = process.env.KAFKA_BROKERS ?? '127.0.0.1:9092';
const clickhouseUrl = process.env.CLICKHOUSE_URL ?? 'http://127.0.0.1:8123';
// A null value unsets the variable (spawn leaves out undefined values).
const asGiven = JSON.parse(process.env.VARIANTS ?? '[{}]') as Record<string, string | null>[];
const variants = asGiven.map(
  ({ baseline, ...v }) =>
    [
      baseline ?? undefined,
      Object.fromEntries(Object.entries(v).map(([k, x]) => [k, x ?? undefined])) as Record<string, string>,
    ] as const,
);
const snapshotAtS = Number(process.env.HEAP_SNAPSHOT_AT_S ?? Number.NaN);
const kafka = benchKafka(brokers);
const outDir = new URL('./out/', import.meta.url).pathname;
mkdirSync(outDir, { recursive: true });
const ctx: Ctx = {
  quick: true,
  kafkaBrokers: brokers,
  clickhouseUrl,
  outDir,
  kafka,
  log: (line) => process.stdout.write(`${line}\n`),
  shared: new Map(),
};

/** Resident MB of a process by kind of mapping. */
function mappings(pid: number): Record<string, number> {
  const out: Record<string, number> = {
    total: 0,
    v8Pages: 0,
    mallocMain: 0,
    anonLarge: 0,
    nodeBinary: 0,
    other: 0,
  };
  let kind = 'other';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const name = head[1] ?? '';
      kind =
        name === ''
          ? 'anon'
          : name === '[heap]'
            ? 'mallocMain'
            : name.endsWith('/node')
              ? 'nodeBinary'
              : 'other';
      continue;
    }
    const size = /^Size:\s+(\d+) kB/.exec(line);
    // V8 allocates its heap in 256 KB pages; anything larger and anonymous is malloc's mmap.
    if (size && kind === 'anon') kind = Number(size[1]) < 1024 ? 'v8Pages' : 'anonLarge';
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) {
      out[kind] = (out[kind] ?? 0) + Number(rss[1]) / 1024;
      out.total = (out.total ?? 0) + Number(rss[1]) / 1024;
    }
  }
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, Math.round(v)]));
}

/** V8 heap committed/used, per space, and external memory, in MB, from the service's /metrics. */
async function heap(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const one = (name: string, label = '') =>
    Math.round(Number(new RegExp(`^${name}\\{[^}]*${label}[^}]*\\} (\\S+)`, 'm').exec(text)?.[1]) / MB);
  return {
    heapTotal: one('nodejs_heap_size_total_bytes'),
    heapUsed: one('nodejs_heap_size_used_bytes'),
    newSpace: one('nodejs_heap_space_size_total_bytes', 'space="new"'),
    oldSpace: one('nodejs_heap_space_size_total_bytes', 'space="old"'),
    external: one('nodejs_external_memory_bytes'),
  };
}

/** Samples every second while `work` runs; the sample with the highest RSS, with its heap numbers. */
async function peakDuring(child: Child & { url: string }, work: Promise<unknown>) {
  let done = false;
  void work.finally(() => {
    done = true;
  });
  let peak = { maps: mappings(child.pid), heap: await heap(child.url) };
  const started = performance.now();
  while (!done) {
    await sleep(1_000);
    if (Math.round((performance.now() - started) / 1000) === snapshotAtS) process.kill(child.pid, 'SIGUSR2');
    const maps = mappings(child.pid);
    if ((maps.total ?? 0) > (peak.maps.total ?? 0)) peak = { maps, heap: await heap(child.url) };
  }
  await work;
  return peak;
}

const withSnapshot = (env: Record<string, string>): Record<string, string> =>
  Number.isNaN(snapshotAtS)
    ? env
    : {
        ...env,
        NODE_OPTIONS: `${env.NODE_OPTIONS ?? SERVICE_PROCESS_ENV.NODE_OPTIONS ?? ''} --heapsnapshot-signal=SIGUSR2`,
      };

async function collectorVariant(env: Record<string, string>) {
  const durationS = Number(a1 ?? 20);
  const rate = Number(a2 ?? 40);
  const topic = await freshTopic(ctx, 'memory', 6);
  const child = await startCollector({ kafkaBrokers: brokers, topic, env: withSnapshot(env) });
  try {
    const atRest = mappings(child.pid).total;
    const cpu = cpuSeconds(child.pid);
    const [body = ''] = nativeBodies(1, 100);
    const load = autocannon({
      url: `${child.url}/v1/events`,
      body,
      headers: REQUEST_HEADERS,
      connections: 100,
      durationS,
      rate,
      workDir: ctx.outDir,
    });
    const peak = await peakDuring(child, load);
    const r = await load;
    const events = r.ok * 100;
    return {
      atRest,
      ...peak,
      eventsPerS: Math.round(r.okPerS * 100),
      non2xx: r.non2xx,
      cpuUsPerEvent: Math.round(((cpuSeconds(child.pid) - cpu) * 1e6) / Math.max(events, 1)),
    };
  } finally {
    await child.stop();
  }
}

/** As the collector sends: one gzip-compressed produce per 500-event request. */
async function produceGzip(topic: string, messages: ReturnType<typeof avroMessages>): Promise<void> {
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  for (let i = 0; i < messages.length; i += 500) {
    await producer.send({
      topic,
      acks: -1,
      compression: CompressionTypes.GZIP,
      messages: messages.slice(i, i + 500),
    });
  }
  await producer.disconnect();
}

let consumerTopic: string | undefined;
async function consumerVariant(env: Record<string, string>, baseline: string | undefined) {
  const total = Number(a1 ?? 200_000);
  if (consumerTopic === undefined) {
    consumerTopic = await freshTopic(ctx, 'memory', 6);
    if (a2 === 'gzip') await produceGzip(consumerTopic, avroMessages(total));
    else await produce(kafka, consumerTopic, avroMessages(total));
  }
  const db = await migratedDatabase(ctx, 'memory');
  await db.close();
  const base = baseline === undefined ? undefined : checkout(baseline);
  const child = await startConsumer({
    ...(base ? { script: base.script } : {}),
    kafkaBrokers: brokers,
    clickhouseUrl,
    database: db.name,
    topic: consumerTopic,
    groupId: uniqueName('memory'),
    extra: withSnapshot(env),
  });
  try {
    const count = async () =>
      Number(
        await (
          await fetch(
            `${clickhouseUrl}/?database=${db.name}&query=${encodeURIComponent('SELECT count() FROM fact_user_activity')}`,
          )
        ).text(),
      );
    const cpu = cpuSeconds(child.pid);
    // rows/s from the first row seen to the last, as scenario 2 (start-up and group join left out).
    let first: { at: number; rows: number } | undefined;
    const drained = (async () => {
      for (;;) {
        const rows = await count();
        if (rows > 0 && first === undefined) first = { at: performance.now(), rows };
        if (rows >= total) return;
        await sleep(100);
      }
    })();
    const peak = await peakDuring(child, drained);
    const seconds = (performance.now() - (first?.at ?? 0)) / 1000;
    return {
      atRest: undefined,
      ...peak,
      rowsPerS: Math.round((total - (first?.rows ?? 0)) / seconds),
      cpuUsPerRow: Math.round(((cpuSeconds(child.pid) - cpu) * 1e6) / total),
    };
  } finally {
    await child.stop();
    base?.remove();
  }
}

for (const [i, [baseline, env]] of variants.entries()) {
  const r = service === 'collector' ? await collectorVariant(env) : await consumerVariant(env, baseline);
  process.stdout.write(`${JSON.stringify({ variant: asGiven[i], ...r })}\n`);
}
process.exit(0);
