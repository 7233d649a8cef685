/**
 * Foundation smoke test: the real broker and the real database answer, Avro round-trips through a
 * consumer group, a row round-trips through ClickHouse, and a committed offset survives a broker
 * restart (on a private stack, so the restart disturbs no other test file).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PrivateStack, privateStack } from '../../deploy/local/private-stack.ts';
import { AvroCodec, SCHEMA_HEADER } from '../../services/lib/avro.ts';
import { createClickHouse } from '../../services/lib/clickhouse.ts';
import { createKafka, ensureTopics, type Kafka } from '../../services/lib/kafka.ts';
import {
  clickhouseUrl,
  freshDatabase,
  freshTopics,
  type TestDatabase,
  type TestTopics,
  uniqueName,
} from '../harness/services.ts';

const codec = new AvroCodec();

function sampleEvent(userId: string): Record<string, unknown> {
  const now = Date.now();
  const record: Record<string, unknown> = {};
  // Start from every field's default so the sample stays valid as the schema grows.
  for (const f of (
    codec.type(codec.writerId('user_activity')) as unknown as {
      fields: { name: string; defaultValue(): unknown }[];
    }
  ).fields) {
    record[f.name] = f.defaultValue();
  }
  return {
    ...record,
    event_id: randomUUID(),
    source: 'smoke',
    received_at: now,
    activity_timestamp: now,
    user_id: userId,
    activity_name: 'login',
    feature_name: 'auth',
  };
}

interface Consumed {
  readonly value: Buffer | null;
  readonly schema: string | undefined;
}

/**
 * Consumes from the start of `topic` in `groupId` until `count` messages arrived; commits them.
 * Returns what arrived for the caller to assert on: an expect inside eachMessage would throw into
 * kafkajs, which retries the handler, so a failure would surface as a timeout.
 */
async function consumeN(kafka: Kafka, topic: string, groupId: string, count: number): Promise<Consumed[]> {
  const consumer = kafka.consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 1_000 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const got: Consumed[] = [];
  await new Promise<void>((resolve, reject) => {
    consumer
      .run({
        autoCommit: true,
        eachMessage: async ({ message }) => {
          got.push({ value: message.value, schema: message.headers?.[SCHEMA_HEADER]?.toString() });
          if (got.length >= count) resolve();
        },
      })
      .catch(reject);
  });
  await consumer.commitOffsets([]).catch(() => undefined);
  await consumer.disconnect();
  return got;
}

describe('shared stack', () => {
  let topics: TestTopics;
  let db: TestDatabase;

  beforeAll(async () => {
    topics = await freshTopics('smoke', 1, 1);
    db = await freshDatabase('smoke');
  });
  afterAll(async () => {
    await topics?.drop();
    await db?.drop();
  });

  it('round-trips an Avro event through Kafka and a row through ClickHouse', async () => {
    const [topic = ''] = topics.names;
    const event = sampleEvent('user-1');
    const producer = topics.kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    await producer.send({
      topic,
      acks: -1,
      messages: [
        {
          key: 'user-1',
          value: codec.encode('user_activity', event),
          headers: { [SCHEMA_HEADER]: codec.writerId('user_activity') },
        },
      ],
    });
    await producer.disconnect();

    const [message] = await consumeN(topics.kafka, topic, uniqueName('smoke-group'), 1);
    expect(message?.schema).toBe('user_activity.v1');
    const decoded = codec.decode('user_activity.v1', message?.value as Buffer).value;
    expect(decoded.event_id).toBe(event.event_id);
    expect(decoded.user_id).toBe('user-1');

    await db.client.command({
      query:
        'CREATE TABLE smoke (event_id String, user_id String, ts DateTime) ENGINE = MergeTree ORDER BY event_id',
    });
    await db.client.insert({
      table: 'smoke',
      format: 'JSONEachRow',
      values: [
        {
          event_id: decoded.event_id,
          user_id: decoded.user_id,
          ts: Math.floor(Number(decoded.received_at) / 1000),
        },
      ],
    });
    const rs = await db.client.query({ query: 'SELECT event_id, user_id FROM smoke', format: 'JSONEachRow' });
    expect(await rs.json()).toEqual([{ event_id: event.event_id, user_id: 'user-1' }]);
  });

  it("runs the query API's ClickHouse user read-only, with its result, concurrency and quota limits", async () => {
    const reader = createClickHouse({
      url: clickhouseUrl(),
      database: db.name,
      username: 'analytics_reader',
    });
    try {
      const rs = await reader.query({
        query: `SELECT name, value FROM system.settings WHERE name IN
          ('readonly', 'max_result_rows', 'result_overflow_mode', 'max_concurrent_queries_for_user') ORDER BY name`,
        format: 'JSONEachRow',
      });
      expect(await rs.json()).toEqual([
        { name: 'max_concurrent_queries_for_user', value: '8' },
        { name: 'max_result_rows', value: '100000' },
        { name: 'readonly', value: '1' },
        { name: 'result_overflow_mode', value: 'break' },
      ]);
      await expect(reader.command({ query: 'CREATE TABLE nope (x UInt8) ENGINE = Memory' })).rejects.toThrow(
        /readonly|Cannot execute query in readonly mode/i,
      );
    } finally {
      await reader.close();
    }
  });
});

describe('private stack', () => {
  let stack: PrivateStack;

  beforeAll(async () => {
    stack = await privateStack('smoke-restart');
    await stack.startKafka();
  });
  afterAll(async () => {
    await stack?.destroy();
  });

  it('keeps a committed consumer-group offset across a broker restart', async () => {
    const kafka = createKafka({ brokers: [stack.kafkaBrokers], clientId: 'smoke-restart' });
    const topic = 'smoke-restart';
    const groupId = 'smoke-restart-group';
    const admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, [{ topic, partitions: 1 }]);
    const producer = kafka.producer();
    await producer.connect();
    const messages = Array.from({ length: 3 }, (_, i) => ({
      value: codec.encode('user_activity', sampleEvent(`u${i}`)),
      headers: { [SCHEMA_HEADER]: codec.writerId('user_activity') },
    }));
    await producer.send({ topic, acks: -1, messages });
    await producer.disconnect();
    const consumed = await consumeN(kafka, topic, groupId, 3);
    expect(consumed.map((m) => m.schema)).toEqual(Array(3).fill('user_activity.v1'));
    const before = await admin.fetchOffsets({ groupId, topics: [topic] });
    await admin.disconnect();
    expect(before[0]?.partitions[0]?.offset).toBe('3');

    await stack.stopKafka();
    await stack.startKafka();

    const kafka2 = createKafka({ brokers: [stack.kafkaBrokers], clientId: 'smoke-restart-2' });
    const admin2 = kafka2.admin();
    await admin2.connect();
    const after = await admin2.fetchOffsets({ groupId, topics: [topic] });
    await admin2.disconnect();
    expect(after[0]?.partitions[0]?.offset).toBe('3');
  });
});
