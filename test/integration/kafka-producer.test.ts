/**
 * BatchingProducer's lanes against the real Kafka: several idempotent producers, each owning a share
 * of the partitions with one send in flight, must keep per-key order across concurrent publishes,
 * put a key where kafkajs's default partitioner (Java's murmur2) puts it, fail every publish of a
 * failed send while later ones succeed, and hold the queue bound over all lanes together.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRODUCER_CODES } from '../../services/lib/error-codes.ts';
import { PipelineError } from '../../services/lib/errors.ts';
import { createKafka, type Kafka } from '../../services/lib/kafka.ts';
import { BatchingProducer, type OutgoingMessage } from '../../services/lib/kafka-producer.ts';
import { createLogger } from '../../services/lib/logger.ts';
import { kafkaBrokers, uniqueName } from '../harness/services.ts';

const PARTITIONS = 6;
const logger = createLogger('kafka-producer-test', 'silent');
let kafka: Kafka;
const producers: BatchingProducer[] = [];

interface Read {
  readonly key: string;
  readonly value: string;
  readonly partition: number;
}

/** Every message of `topic` from the start, raw (these tests publish text values, not Avro). */
async function readUntil(topic: string, count: number): Promise<Read[]> {
  const consumer = kafka.consumer({ groupId: uniqueName('producer-reader'), sessionTimeout: 10_000 });
  const read: Read[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message, partition }) => {
        read.push({ key: message.key?.toString() ?? '', value: message.value?.toString() ?? '', partition });
      },
    });
    while (read.length < count) await new Promise((r) => setTimeout(r, 50));
    return read;
  } finally {
    await consumer.disconnect();
  }
}

async function started(
  topic: string,
  o: { lanes?: number; maxQueuedBytes?: number; maxSendBytes?: number } = {},
): Promise<BatchingProducer> {
  const p = new BatchingProducer({
    kafka,
    topic,
    partitions: PARTITIONS,
    logger,
    maxSendBytes: o.maxSendBytes ?? 900 * 1024,
    maxQueuedBytes: o.maxQueuedBytes ?? 64 * 1024 * 1024,
    publishTimeoutMs: 30_000,
    compression: 'none',
    idempotent: true,
    ...(o.lanes === undefined ? {} : { lanes: o.lanes }),
  });
  producers.push(p);
  await p.start();
  return p;
}

const msg = (key: string, value: string | Buffer): OutgoingMessage => ({
  key,
  value: Buffer.isBuffer(value) ? value : Buffer.from(value),
  headers: {},
});

async function rejection(p: Promise<void>): Promise<PipelineError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof PipelineError)) throw new Error(`expected a PipelineError, got ${String(err)}`);
  return err;
}

beforeAll(() => {
  kafka = createKafka({ brokers: kafkaBrokers(), clientId: uniqueName('producer-test'), retries: 2 });
});

afterAll(async () => {
  await Promise.all(producers.map((p) => p.close().catch(() => undefined)));
});

describe('BatchingProducer lanes', () => {
  it('keeps each key in order across concurrent publishes sent by several lanes at once', async () => {
    const topic = uniqueName('producer-order').replace(/_/g, '-');
    const producer = await started(topic, { lanes: 3 });
    const keys = Array.from({ length: 40 }, (_, i) => `user-${i}`);
    const next = new Map<string, number>();
    // 200 publishes in flight together, each with a few messages of a few keys: the lanes coalesce
    // them into sends of many publishes, and a key's numbers must come out in the order published.
    const publishes: Promise<void>[] = [];
    for (let i = 0; i < 200; i++) {
      const batch: OutgoingMessage[] = [];
      for (let j = 0; j < 5; j++) {
        const key = keys[(i * 7 + j * 13) % keys.length] as string;
        const n = next.get(key) ?? 0;
        next.set(key, n + 1);
        batch.push(msg(key, String(n)));
      }
      publishes.push(producer.publish(batch));
    }
    await Promise.all(publishes);
    const read = await readUntil(topic, 1_000);
    expect(read).toHaveLength(1_000);
    const partitions = new Set(read.map((r) => r.partition));
    expect(partitions.size).toBeGreaterThan(3);
    for (const key of keys) {
      const values = read.filter((r) => r.key === key).map((r) => Number(r.value));
      expect(values, key).toEqual(Array.from({ length: next.get(key) ?? 0 }, (_, n) => n));
    }
  });

  it('puts a key on the partition a plain kafkajs producer (default partitioner) puts it', async () => {
    const topic = uniqueName('producer-partition').replace(/_/g, '-');
    const producer = await started(topic);
    const keys = Array.from({ length: 30 }, (_, i) => `anon-${i}-${randomBytes(4).toString('hex')}`);
    await producer.publish(keys.map((k) => msg(k, 'lanes')));
    const plain = kafka.producer({ allowAutoTopicCreation: false });
    await plain.connect();
    await plain.send({ topic, acks: -1, messages: keys.map((key) => ({ key, value: 'plain' })) });
    await plain.disconnect();
    const read = await readUntil(topic, keys.length * 2);
    for (const key of keys) {
      const [a, b] = read.filter((r) => r.key === key);
      expect(a?.partition, key).toBe(b?.partition);
    }
  });

  it("rejects every publish of a failed send, and the lane's next publishes succeed", async () => {
    const topic = uniqueName('producer-fail').replace(/_/g, '-');
    // One send may carry more than the broker's message.max.bytes (1 MB): it is refused whole.
    const producer = await started(topic, { maxSendBytes: 4 * 1024 * 1024 });
    const first = producer.publish([msg('k', 'first')]);
    // Queued behind `first` in the same lane (same key), so they travel together in the next send.
    const small = producer.publish([msg('k', 'small')]);
    const huge = producer.publish([msg('k', randomBytes(2 * 1024 * 1024))]);
    await first;
    const [smallErr, hugeErr] = await Promise.all([rejection(small), rejection(huge)]);
    expect(hugeErr.code).toBe(PRODUCER_CODES.rejected);
    expect(smallErr.code).toBe(PRODUCER_CODES.rejected);
    expect(producer.healthy()).toBe(false);
    await producer.publish([msg('k', 'after')]);
    await producer.publish([msg('k', 'after 2'), msg('other', 'after 2')]);
    expect(producer.healthy()).toBe(true);
    const read = await readUntil(topic, 4);
    expect(read.filter((r) => r.key === 'k').map((r) => r.value)).toEqual(['first', 'after', 'after 2']);
  });

  it('refuses a publish once the bytes queued over all lanes reach the bound, and takes it after', async () => {
    const topic = uniqueName('producer-bound').replace(/_/g, '-');
    const producer = await started(topic, { maxQueuedBytes: 64 * 1024 });
    const value = Buffer.alloc(10 * 1024, 1);
    // Six keys over several lanes, 60 KB in all: under the bound together, the next 10 KB is over.
    const held = Array.from({ length: 6 }, (_, i) => producer.publish([msg(`bound-${i}`, value)]));
    const refused = await rejection(producer.publish([msg('bound-x', value)]));
    expect(refused.code).toBe(PRODUCER_CODES.overloaded);
    expect(refused.retriable).toBe(true);
    await Promise.all(held);
    await producer.publish([msg('bound-x', value)]);
    expect(producer.backlogMs()).toBe(0);
  });

  it('refuses publishes before start() and after close()', async () => {
    const topic = uniqueName('producer-life').replace(/_/g, '-');
    const producer = new BatchingProducer({
      kafka,
      topic,
      partitions: PARTITIONS,
      logger,
      maxSendBytes: 900 * 1024,
      maxQueuedBytes: 1024 * 1024,
      publishTimeoutMs: 30_000,
      compression: 'gzip',
      idempotent: true,
    });
    expect((await rejection(producer.publish([msg('a', 'b')]))).code).toBe(PRODUCER_CODES.unavailable);
    await producer.start();
    const sent = producer.publish([msg('a', 'b'), msg('c', 'd'), msg('e', 'f')]);
    await producer.close();
    await sent;
    expect((await rejection(producer.publish([msg('a', 'b')]))).code).toBe(PRODUCER_CODES.closed);
  });
});
