/**
 * Scenario 6, Kafka client choice: kafkajs (the default, behind services/lib) and
 * @platformatic/kafka, same broker, same Avro messages, same guarantees: producer acks=all, not
 * idempotent, no compression, batches of 100, CONCURRENCY sends in flight; consumer from the
 * earliest offset in a new group with the client's automatic offset commits, until every message
 * of the pre-filled topic arrived. Both clients are imported here directly: comparing them is the
 * point, and the services keep using services/lib.
 */
import { Consumer, MessagesStreamModes, ProduceAcks, Producer } from '@platformatic/kafka';
import { type Ctx, freshTopic, type Row, type Scenario, uniqueName } from '../lib/context.ts';
import { avroMessages, type RawMessage } from '../lib/data.ts';
import { pollUntil, round, summary } from '../lib/measure.ts';

const BATCH = 100;
const CONCURRENCY = 8;

interface ProduceRun {
  readonly perS: number;
  readonly p50: number;
  readonly p99: number;
}

async function produceAll(
  messages: readonly RawMessage[],
  send: (batch: readonly RawMessage[]) => Promise<void>,
): Promise<ProduceRun> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    for (let i = next; i < messages.length; i = next) {
      next += BATCH;
      const t = performance.now();
      await send(messages.slice(i, i + BATCH));
      latencies.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const s = summary(latencies);
  return { perS: messages.length / ((performance.now() - started) / 1000), p50: s.p50, p99: s.p99 };
}

async function kafkajsProduce(ctx: Ctx, topic: string, messages: readonly RawMessage[]): Promise<ProduceRun> {
  const producer = ctx.kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    return await produceAll(messages, async (batch) => {
      await producer.send({ topic, acks: -1, messages: [...batch] });
    });
  } finally {
    await producer.disconnect();
  }
}

async function platformaticProduce(
  ctx: Ctx,
  topic: string,
  messages: readonly RawMessage[],
): Promise<ProduceRun> {
  const producer = new Producer({
    clientId: 'bench-platformatic',
    bootstrapBrokers: ctx.kafkaBrokers.split(','),
  });
  try {
    return await produceAll(messages, async (batch) => {
      await producer.send({
        acks: ProduceAcks.ALL,
        messages: batch.map((m) => ({
          topic,
          ...(m.key === null ? {} : { key: Buffer.from(m.key) }),
          value: m.value ?? Buffer.alloc(0),
          // A Record of headers fails to produce with 2.12.1's default (Buffer) serialisers; a Map works.
          headers: new Map(Object.entries(m.headers).map(([k, v]) => [Buffer.from(k), Buffer.from(v)])),
        })),
      });
    });
  } finally {
    await producer.close();
  }
}

async function kafkajsConsume(ctx: Ctx, topic: string, total: number): Promise<number> {
  const consumer = ctx.kafka.consumer({ groupId: uniqueName('bench-kafkajs'), maxBytes: 16 * 1024 * 1024 });
  let received = 0;
  let firstAt = 0;
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      partitionsConsumedConcurrently: 6,
      eachBatch: async ({ batch }) => {
        if (firstAt === 0) firstAt = performance.now();
        received += batch.messages.length;
      },
    });
    await pollUntil('kafkajs consumed every message', async () => received >= total, 300_000, 20);
    return total / ((performance.now() - firstAt) / 1000);
  } finally {
    await consumer.disconnect();
  }
}

async function platformaticConsume(ctx: Ctx, topic: string, total: number): Promise<number> {
  const consumer = new Consumer({
    groupId: uniqueName('bench-platformatic'),
    clientId: 'bench-platformatic',
    bootstrapBrokers: ctx.kafkaBrokers.split(','),
  });
  let received = 0;
  let firstAt = 0;
  const stream = await consumer.consume({
    topics: [topic],
    mode: MessagesStreamModes.EARLIEST,
    autocommit: true,
    maxBytes: 16 * 1024 * 1024,
  });
  try {
    stream.on('data', () => {
      if (firstAt === 0) firstAt = performance.now();
      received++;
    });
    await pollUntil('@platformatic/kafka consumed every message', async () => received >= total, 300_000, 20);
    return total / ((performance.now() - firstAt) / 1000);
  } finally {
    await stream.close();
    await consumer.close();
  }
}

export const kafkaClientsScenario: Scenario = async (ctx) => {
  const total = ctx.quick ? 50_000 : 300_000;
  const messages = avroMessages(total);
  const rows: Row[] = [];
  const clients = [
    ['kafkajs 2.2.4', kafkajsProduce, kafkajsConsume],
    ['@platformatic/kafka 2.12.1', platformaticProduce, platformaticConsume],
  ] as const;
  const produced = new Map<string, ProduceRun>();
  const consumed = new Map<string, number>();
  for (const [name, produce, consume] of clients) {
    const topic = await freshTopic(ctx, 'clients', 6);
    ctx.log(`  ${name}: produce ${total}`);
    const p = await produce(ctx, topic, messages);
    ctx.log(`  ${name}: consume ${total}`);
    const c = await consume(ctx, topic, total);
    produced.set(name, p);
    consumed.set(name, c);
    rows.push({
      case: name,
      values: {
        'produce msgs/s': round(p.perS),
        'send p50 ms': round(p.p50, 1),
        'send p99 ms': round(p.p99, 1),
        'consume msgs/s': round(c),
      },
    });
  }
  const [[a], [b]] = clients;
  rows.push({
    case: 'ratio platformatic/kafkajs',
    values: {
      'produce msgs/s': round((produced.get(b)?.perS ?? 0) / (produced.get(a)?.perS ?? 1), 2),
      'consume msgs/s': round((consumed.get(b) ?? 0) / (consumed.get(a) ?? 1), 2),
    },
  });
  return {
    id: '6',
    title: 'Kafka client: kafkajs vs @platformatic/kafka',
    notes: [
      `${total.toLocaleString('en-US')} Avro activity messages, 6 partitions, each client on its own topic; produce then consume, in the bench process.`,
      'Consumers only count messages (no decode, no ClickHouse): this isolates the client. Each client commits offsets automatically.',
    ],
    rows,
    targets: [],
    profiles: [],
  };
};
