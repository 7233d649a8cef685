/**
 * Exploration (replaced by the next commit's test): @platformatic/kafka 2.12.1's idempotent producer
 * used as bench scenario 6 uses it, 8 sends of 100 keyed messages in flight on one producer, on the
 * private 3-node cluster: the leader of partition 0 killed -9 and restarted, then two of three nodes
 * killed and restarted. Prints what happened to the sends (resolved, rejected, missing, duplicated,
 * resolved messages out of per-key order, producer ids seen). PLAT_RETRIES sets the producer's
 * retries (the library's default for an idempotent producer is unbounded).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Producer } from '@platformatic/kafka';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createKafka, ensureTopics, type Kafka } from '../../services/lib/kafka.ts';
import { killLeader, NODES, partitionStates, waitForFailover } from '../harness/kafka-cluster.ts';
import { type PrivateStack, privateStack } from '../harness/private-stack.ts';

const TOPIC = 'plat-idem';
const KEYS = 40;
const BATCH = 100;
const WORKERS = 8;

let stack: PrivateStack;
let kafka: Kafka;
const log = (s: string) => process.stderr.write(`[plat] ${s}\n`);

beforeAll(async () => {
  stack = await privateStack('plat-producer', () => {}, { nodes: 3 });
  await stack.startKafka();
  kafka = createKafka({ brokers: stack.kafkaBrokers.split(','), clientId: 'plat-test' });
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, [{ topic: TOPIC, partitions: 6, replicationFactor: 3 }]);
  await admin.disconnect();
});
afterAll(async () => {
  await stack?.destroy();
});

interface Sent {
  readonly ids: string[];
  state: 'pending' | 'ok' | 'failed';
  err?: string;
  readonly at: number;
  doneAt?: number;
}

async function readAll(topic: string): Promise<{ key: string; id: string; partition: number }[]> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const want = new Map(ends.map((e) => [e.partition, Number(e.high)]));
  const got = new Map<number, { key: string; id: string; partition: number }[]>();
  const consumer = kafka.consumer({ groupId: `reader-${Date.now()}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const done = new Map<number, number>();
  await consumer.run({
    eachMessage: async ({ message, partition }) => {
      const list = got.get(partition) ?? [];
      got.set(partition, list);
      list.push({ key: message.key?.toString() ?? '', id: message.value?.toString() ?? '', partition });
      done.set(partition, Number(message.offset) + 1);
    },
  });
  for (;;) {
    let all = true;
    for (const [p, high] of want) if ((done.get(p) ?? 0) < high && high > 0) all = false;
    if (all) break;
    await sleep(100);
  }
  await consumer.disconnect();
  return [...got.values()].flat();
}

it('explores', async () => {
  const retries = process.env.PLAT_RETRIES === undefined ? undefined : Number(process.env.PLAT_RETRIES);
  const producer = new Producer({
    clientId: 'plat-idem',
    bootstrapBrokers: stack.kafkaBrokers.split(','),
    idempotent: true,
    ...(retries === undefined ? {} : { retries }),
  });
  const counters = new Array(KEYS).fill(0) as number[];
  const sends: Sent[] = [];
  const pids = new Set<string>();
  let stop = false;
  let seed = 1;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const worker = async () => {
    while (!stop) {
      const msgs = Array.from({ length: BATCH }, () => {
        const k = Math.floor(rnd() * KEYS);
        const n = counters[k] ?? 0;
        counters[k] = n + 1;
        return { key: `k${k}`, id: `k${k}:${n}` };
      });
      const s: Sent = { ids: msgs.map((m) => m.id), state: 'pending', at: Date.now() };
      sends.push(s);
      try {
        await producer.send({
          messages: msgs.map((m) => ({ topic: TOPIC, key: Buffer.from(m.key), value: Buffer.from(m.id) })),
        });
        s.state = 'ok';
      } catch (err) {
        s.state = 'failed';
        s.err = String((err as Error).message);
      }
      s.doneAt = Date.now();
      pids.add(String(producer.producerId));
      if (s.state === 'failed') await sleep(200);
    }
  };
  const admin = kafka.admin();
  await admin.connect();
  const workers = Array.from({ length: WORKERS }, worker);
  await sleep(3_000);
  const v1 = await killLeader(stack, admin, TOPIC);
  log(`killed ${v1}`);
  await waitForFailover(
    admin,
    TOPIC,
    NODES.filter((n) => n !== v1),
  );
  await sleep(3_000);
  await stack.startKafka();
  for (;;) {
    const ps = await partitionStates(admin, TOPIC).catch(() => []);
    if (ps.length > 0 && ps.every((p) => p.isr.length === 3)) break;
    await sleep(500);
  }
  log(`back; sends so far ${sends.length}`);
  const v2 = await killLeader(stack, admin, TOPIC);
  const v3 = NODES.find((n) => n !== v2) as number;
  await stack.killKafkaNode(v3);
  log(`killed ${v2} and ${v3}`);
  await sleep(12_000);
  await stack.startKafka();
  for (;;) {
    const ps = await partitionStates(admin, TOPIC).catch(() => []);
    if (ps.length > 0 && ps.every((p) => p.isr.length === 3)) break;
    await sleep(500);
  }
  log(`back again; sends so far ${sends.length}`);
  await sleep(5_000);
  stop = true;
  await Promise.race([Promise.all(workers), sleep(60_000)]);
  const pending = sends.filter((s) => s.state === 'pending').length;
  const after = await producer
    .send({ messages: [{ topic: TOPIC, key: Buffer.from('final'), value: Buffer.from('final') }] })
    .then(
      () => 'ok',
      (e: Error) => e.message,
    );
  await admin.disconnect();
  await producer.close(true).catch(() => undefined);

  const log2 = await readAll(TOPIC);
  const count = new Map<string, number>();
  for (const m of log2) count.set(m.id, (count.get(m.id) ?? 0) + 1);
  const ok = sends.filter((s) => s.state === 'ok');
  const failed = sends.filter((s) => s.state === 'failed');
  let missing = 0;
  for (const s of ok) for (const id of s.ids) if (!count.has(id)) missing++;
  let dup = 0;
  for (const c of count.values()) if (c > 1) dup += c - 1;
  const okIds = new Set(ok.flatMap((s) => s.ids));
  // Per key: resolved ids in log order (first occurrence) must have increasing n.
  const seen = new Set<string>();
  let inversions = 0;
  const lastN = new Map<string, number>();
  const examples: string[] = [];
  for (const m of log2) {
    if (!okIds.has(m.id) || seen.has(m.id)) continue;
    seen.add(m.id);
    const n = Number(m.id.split(':')[1]);
    const prev = lastN.get(m.key) ?? -1;
    if (n < prev) {
      inversions++;
      if (examples.length < 5) examples.push(`${m.key}: ${n} after ${prev} (p${m.partition})`);
    }
    lastN.set(m.key, Math.max(prev, n));
  }
  const errs = new Map<string, number>();
  for (const s of failed) errs.set(s.err ?? '', (errs.get(s.err ?? '') ?? 0) + 1);
  log(
    JSON.stringify({
      retries,
      sends: sends.length,
      ok: ok.length,
      failed: failed.length,
      pending,
      after,
      inLog: log2.length,
      missing,
      dup,
      inversions,
      examples,
      errs: [...errs],
      pids: [...pids],
    }),
  );
  expect(true).toBe(true);
});
