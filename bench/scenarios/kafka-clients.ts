/**
 * Scenario 6, Kafka client choice: kafkajs (the default, behind services/lib),
 * @platformatic/kafka and Confluent's librdkafka-based @confluentinc/kafka-javascript, same broker,
 * same keyed Avro messages, the collector's guarantees: producer acks=all and idempotent (each
 * client's own rule for what that allows in flight: kafkajs one request, librdkafka five), no
 * compression, batches of 100, CONCURRENCY sends in flight (kafkajs: one, since concurrent sends
 * of its idempotent producer are refused by the broker as out of order sequence numbers, which is
 * why the collector's BatchingProducer keeps one send in flight per lane, docs/KAFKA.md); consumer
 * from the earliest offset in a new group with the client's automatic offset commits, until every
 * message of the pre-filled topic arrived. The clients are imported here directly: comparing them
 * is the point, and the services keep using services/lib. The Confluent client is not a project
 * dependency (its install builds librdkafka from source): deploy/tools/install.sh builds it into
 * .data/tools once, and it runs last because loading it stopped a later kafkajs producer in the same
 * process from producing anything (seen by hand, 2026-11-30).
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Consumer, MessagesStreamModes, ProduceAcks, Producer } from '@platformatic/kafka';
import { uniqueName } from '../../deploy/local/private-stack.ts';
import { type Ctx, freshTopic, type Row, type Scenario } from '../lib/context.ts';
import { avroMessages, type RawMessage } from '../lib/data.ts';
import { pollUntil, round, summary } from '../lib/measure.ts';
import { ROOT } from '../lib/processes.ts';

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
  concurrency = CONCURRENCY,
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
  await Promise.all(Array.from({ length: concurrency }, worker));
  const s = summary(latencies);
  return { perS: messages.length / ((performance.now() - started) / 1000), p50: s.p50, p99: s.p99 };
}

async function kafkajsProduce(ctx: Ctx, topic: string, messages: readonly RawMessage[]): Promise<ProduceRun> {
  // kafkajs's idempotent producer requires one request in flight.
  const producer = ctx.kafka.producer({
    allowAutoTopicCreation: false,
    idempotent: true,
    maxInFlightRequests: 1,
  });
  await producer.connect();
  try {
    return await produceAll(
      messages,
      async (batch) => {
        await producer.send({ topic, acks: -1, messages: [...batch] });
      },
      1,
    );
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
    idempotent: true,
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

/** The part of @confluentinc/kafka-javascript's KafkaJS-compatible API used here. */
interface ConfluentKafkaJs {
  readonly Kafka: new (config: {
    kafkaJS: { brokers: string[]; clientId: string; logLevel: number };
  }) => {
    producer(config: { kafkaJS: { idempotent: boolean; acks: number } }): {
      connect(): Promise<void>;
      send(r: { topic: string; messages: RawMessage[] }): Promise<unknown>;
      disconnect(): Promise<void>;
    };
    consumer(config: { kafkaJS: { groupId: string; fromBeginning: boolean } }): {
      connect(): Promise<void>;
      subscribe(s: { topics: string[] }): Promise<void>;
      run(r: {
        partitionsConsumedConcurrently: number;
        eachBatch: (p: { batch: { messages: unknown[] } }) => Promise<void>;
      }): Promise<void>;
      disconnect(): Promise<void>;
    };
  };
  readonly logLevel: { NOTHING: number };
}

/** Builds the client once per machine (deploy/tools/install.sh) and loads it; a reason when it cannot. */
function loadConfluent(ctx: Ctx): { client: ConfluentKafkaJs; version: string } | { reason: string } {
  try {
    const dir = execFileSync('bash', [join(ROOT, 'deploy/tools/install.sh'), 'confluent-kafka'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    }).trim();
    const require = createRequire(join(dir, 'package.json'));
    const version = (require('./package.json') as { version: string }).version;
    return { client: (require('./lib/index.js') as { KafkaJS: ConfluentKafkaJs }).KafkaJS, version };
  } catch (err) {
    ctx.log(`  @confluentinc/kafka-javascript not installable: ${String(err).slice(0, 500)}`);
    return { reason: String(err).split('\n')[0] ?? 'install failed' };
  }
}

function confluentClient(ctx: Ctx, c: ConfluentKafkaJs) {
  const kafka = new c.Kafka({
    kafkaJS: {
      brokers: ctx.kafkaBrokers.split(','),
      clientId: 'bench-confluent',
      logLevel: c.logLevel.NOTHING,
    },
  });
  const produce = async (_ctx: Ctx, topic: string, messages: readonly RawMessage[]): Promise<ProduceRun> => {
    const producer = kafka.producer({ kafkaJS: { idempotent: true, acks: -1 } });
    await producer.connect();
    try {
      return await produceAll(messages, async (batch) => {
        await producer.send({ topic, messages: [...batch] });
      });
    } finally {
      await producer.disconnect();
    }
  };
  const consume = async (_ctx: Ctx, topic: string, total: number): Promise<number> => {
    const consumer = kafka.consumer({
      kafkaJS: { groupId: uniqueName('bench-confluent'), fromBeginning: true },
    });
    let received = 0;
    let firstAt = 0;
    await consumer.connect();
    try {
      await consumer.subscribe({ topics: [topic] });
      await consumer.run({
        partitionsConsumedConcurrently: 6,
        eachBatch: async ({ batch }) => {
          if (firstAt === 0) firstAt = performance.now();
          received += batch.messages.length;
        },
      });
      await pollUntil('confluent consumed every message', async () => received >= total, 300_000, 20);
      return total / ((performance.now() - firstAt) / 1000);
    } finally {
      await consumer.disconnect();
    }
  };
  return { produce, consume };
}

export const kafkaClientsScenario: Scenario = async (ctx) => {
  const total = ctx.quick ? 50_000 : 300_000;
  const messages = avroMessages(total);
  const rows: Row[] = [];
  type Produce = (ctx: Ctx, topic: string, messages: readonly RawMessage[]) => Promise<ProduceRun>;
  type Consume = (ctx: Ctx, topic: string, total: number) => Promise<number>;
  const clients: [string, Produce, Consume][] = [
    ['kafkajs 2.2.4', kafkajsProduce, kafkajsConsume],
    ['@platformatic/kafka 2.12.1', platformaticProduce, platformaticConsume],
  ];
  const confluent = loadConfluent(ctx);
  const notes: string[] = [];
  if ('client' in confluent) {
    const c = confluentClient(ctx, confluent.client);
    clients.push([`@confluentinc/kafka-javascript ${confluent.version}`, c.produce, c.consume]);
  } else {
    notes.push(`@confluentinc/kafka-javascript left out: ${confluent.reason}`);
  }
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
  const [base, ...others] = clients.map(([name]) => name);
  for (const other of others) {
    rows.push({
      case: `ratio ${other.split(' ')[0]}/kafkajs`,
      values: {
        'produce msgs/s': round((produced.get(other)?.perS ?? 0) / (produced.get(base ?? '')?.perS ?? 1), 2),
        'consume msgs/s': round((consumed.get(other) ?? 0) / (consumed.get(base ?? '') ?? 1), 2),
      },
    });
  }
  return {
    id: '6',
    title: 'Kafka client: kafkajs vs @platformatic/kafka vs @confluentinc/kafka-javascript',
    notes: [
      ...notes,
      `${total.toLocaleString('en-US')} Avro activity messages, 6 partitions, each client on its own topic; produce then consume, in the bench process.`,
      'Producers: acks=all, idempotent, no compression, batches of 100; 8 sends in flight, except kafkajs: one (its idempotent producer fails concurrent sends with out-of-order sequence numbers).',
      'Consumers only count messages (no decode, no ClickHouse): this isolates the client. Each client commits offsets automatically.',
    ],
    rows,
    targets: [],
    profiles: [],
  };
};
