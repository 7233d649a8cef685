/**
 * The collector's producer (BatchingProducer: lanes of idempotent producers, one send in flight
 * each) under broker faults on the private 3-node cluster (RF 3, min ISR 2), with eight publishers
 * of 100 keyed messages each, as concurrent collector requests publish:
 *
 * 1. kill -9 of the leader of partition 0, failover, the node restarted and back in every ISR;
 * 2. two of three killed for 10 s (nothing can be acknowledged), both restarted.
 *
 * Then: every resolved publish is in the topic (at least once; duplicates are the consumer's to
 * drop by event id), each key's resolved messages are in the order they were published, every
 * rejected publish said "retry" (a retriable KAFKA_* error, the collector's 503), and a publish after
 * the faults resolves (the producer is not wedged).
 *
 * Why per-key order is the point: @platformatic/kafka with 8 sends in flight on one idempotent
 * producer broke it under the same kill, and so did its lanes changed to 8 sends in flight each
 * (docs/KAFKA.md, "Why not @platformatic/kafka"). Long (about two minutes, a cluster of its own),
 * so in `npm run test:faults`, not CI.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type PrivateStack, privateStack } from '../../../deploy/local/private-stack.ts';
import { PipelineError } from '../../../services/lib/errors.ts';
import { type Admin, createKafka, type Kafka } from '../../../services/lib/kafka.ts';
import { BatchingProducer, type OutgoingMessage } from '../../../services/lib/kafka-producer.ts';
import { createLogger } from '../../../services/lib/logger.ts';
import { killLeader, NODES, partitionStates, waitForFailover } from '../../harness/kafka-cluster.ts';

const TOPIC = 'producer-order';
const KEYS = 40;
const PER_PUBLISH = 100;
const PUBLISHERS = 8;

let stack: PrivateStack;
let kafka: Kafka;
let admin: Admin;
let producer: BatchingProducer;

beforeAll(async () => {
  stack = await privateStack('producer-order', () => {}, { nodes: 3 });
  await stack.startKafka();
  const brokers = stack.kafkaBrokers.split(',');
  kafka = createKafka({ brokers, clientId: 'producer-order-test' });
  admin = kafka.admin();
  await admin.connect();
  producer = new BatchingProducer({
    kafka,
    topic: TOPIC,
    partitions: 6,
    replicationFactor: 3,
    logger: createLogger('producer-order', 'silent'),
    maxSendBytes: 900 * 1024,
    maxQueuedBytes: 64 * 1024 * 1024,
    publishTimeoutMs: 5_000,
    compression: 'gzip',
    idempotent: true,
  });
  await producer.start();
});

afterAll(async () => {
  await producer?.close().catch(() => undefined);
  await admin?.disconnect();
  await stack?.destroy();
});

interface Publish {
  readonly ids: readonly string[];
  outcome: 'pending' | 'resolved' | PipelineError;
}

/** Every message of `topic` up to its high watermarks, per partition in log order. */
async function readAll(topic: string): Promise<{ key: string; id: string }[]> {
  const high = new Map((await admin.fetchTopicOffsets(topic)).map((e) => [e.partition, Number(e.high)]));
  const read = new Map<number, { key: string; id: string }[]>();
  const consumer = kafka.consumer({ groupId: `producer-order-reader-${Date.now()}` });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message, partition }) => {
        const list = read.get(partition) ?? [];
        read.set(partition, list);
        list.push({ key: message.key?.toString() ?? '', id: message.value?.toString() ?? '' });
      },
    });
    while ([...high].some(([p, h]) => (read.get(p)?.length ?? 0) < h)) await sleep(100);
  } finally {
    await consumer.disconnect();
  }
  return [...read.values()].flat();
}

async function allInSync(): Promise<void> {
  for (;;) {
    const ps = await partitionStates(admin, TOPIC).catch(() => []);
    if (ps.length > 0 && ps.every((p) => p.isr.length === NODES.length)) return;
    await sleep(500);
  }
}

it('leader killed, then two of three down: resolved publishes all there and in key order, rejected ones retriable, not wedged', async () => {
  // A message's value is "<key>:<n>", n counting that key's messages in the order they were published.
  const next = new Array<number>(KEYS).fill(0);
  let seed = 17_001;
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    return seed / 2_147_483_648;
  };
  const publishes: Publish[] = [];
  let stop = false;
  const publisher = async () => {
    while (!stop) {
      const messages: OutgoingMessage[] = Array.from({ length: PER_PUBLISH }, () => {
        const k = Math.floor(random() * KEYS);
        const n = next[k] ?? 0;
        next[k] = n + 1;
        return { key: `k${k}`, value: Buffer.from(`k${k}:${n}`), headers: {} };
      });
      const p: Publish = { ids: messages.map((m) => m.value.toString()), outcome: 'pending' };
      publishes.push(p);
      try {
        await producer.publish(messages);
        p.outcome = 'resolved';
      } catch (err) {
        p.outcome = err as PipelineError;
        // A refused sender backs off before it retries, as the SDKs do.
        await sleep(200);
      }
    }
  };
  const running = Array.from({ length: PUBLISHERS }, publisher);

  await sleep(3_000);
  const first = await killLeader(stack, admin, TOPIC);
  await waitForFailover(
    admin,
    TOPIC,
    NODES.filter((n) => n !== first),
  );
  await sleep(3_000);
  await stack.startKafka();
  await allInSync();
  const second = await killLeader(stack, admin, TOPIC);
  await stack.killKafkaNode(NODES.find((n) => n !== second) as number);
  await sleep(10_000);
  await stack.startKafka();
  await allInSync();
  await sleep(3_000);
  stop = true;
  await Promise.all(running);

  // Not wedged: a publish after the faults resolves (a few tries while metadata settles).
  let after: unknown;
  for (let i = 0; i < 10; i++) {
    after = await producer.publish([{ key: 'after', value: Buffer.from('after:0'), headers: {} }]).then(
      () => 'resolved',
      (err: unknown) => err,
    );
    if (after === 'resolved') break;
    await sleep(1_000);
  }

  const log = await readAll(TOPIC);
  const resolved = publishes.filter((p) => p.outcome === 'resolved');
  const rejected = publishes.flatMap((p) => (p.outcome instanceof PipelineError ? [p.outcome] : []));
  const copies = new Map<string, number>();
  for (const m of log) copies.set(m.id, (copies.get(m.id) ?? 0) + 1);
  const resolvedIds = new Set(resolved.flatMap((p) => p.ids));
  const missing = [...resolvedIds].filter((id) => !copies.has(id));
  // Per key, each resolved message's first copy comes after those of every resolved message published before it.
  const outOfOrder: string[] = [];
  const highest = new Map<string, number>();
  const seen = new Set<string>();
  for (const m of log) {
    if (!resolvedIds.has(m.id) || seen.has(m.id)) continue;
    seen.add(m.id);
    const n = Number(m.id.slice(m.id.indexOf(':') + 1));
    const before = highest.get(m.key) ?? -1;
    if (n < before) outOfOrder.push(`${m.id} after ${m.key}:${before}`);
    highest.set(m.key, Math.max(n, before));
  }
  const duplicated = [...copies.values()].reduce((sum, c) => sum + c - 1, 0);
  process.stderr.write(
    `[producer-order] nodes ${first}, then ${second} and another killed; ${publishes.length} publishes: ` +
      `${resolved.length} resolved, ${rejected.length} rejected (${[...new Set(rejected.map((e) => e.code))].join(', ')}); ` +
      `${log.length} messages in the topic, ${duplicated} extra copies; missing ${missing.length}, ` +
      `out of key order ${outOfOrder.length}; after the faults: ${after === 'resolved' ? 'resolved' : String(after)}\n`,
  );

  expect(publishes.every((p) => p.outcome !== 'pending')).toBe(true);
  expect(missing).toEqual([]);
  expect(outOfOrder.slice(0, 10)).toEqual([]);
  // Two of three down left nothing acknowledgeable: some publishes were refused, each as "retry".
  expect(rejected.length).toBeGreaterThan(0);
  for (const e of rejected) {
    expect(e.retriable).toBe(true);
    expect(e.code).toMatch(/^KAFKA_/);
  }
  expect(after).toBe('resolved');
});
