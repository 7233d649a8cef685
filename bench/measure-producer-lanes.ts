/**
 * Measures the collector's producer (services/lib/kafka-producer.ts) at several lane counts, so the
 * default rests on numbers (docs/KAFKA.md records them). Each lane count in turn, round after round
 * (so a busy machine's noise spreads over all of them): a fresh 6-partition topic, a BatchingProducer
 * with the collector's settings (idempotent, acks=all, gzip, 900 KB sends), and CONCURRENCY
 * publishers each publishing 100 of bench's Avro activity messages (random user keys) and waiting
 * for the acks, as the collector's requests do, for `seconds`. Reported per lane count: events/s
 * and the process's CPU microseconds per event, each round and the mean.
 *
 *   node bench/measure-producer-lanes.ts [lanes=1,2,3,6] [rounds=3] [seconds=5]
 * with KAFKA_BROKERS (default 127.0.0.1:9092) and KAFKA_REPLICATION_FACTOR (default 1; 3 on the
 * local 3-broker cluster, `KAFKA_NODES=3 node deploy/local/cli.ts stack-up`).
 */
import { randomBytes } from 'node:crypto';
import { int, list, readConfig } from '../services/lib/config.ts';
import { createKafka } from '../services/lib/kafka.ts';
import { BatchingProducer, type OutgoingMessage } from '../services/lib/kafka-producer.ts';
import { createLogger } from '../services/lib/logger.ts';
import { avroMessages } from './lib/data.ts';

const CONCURRENCY = 50;
const PER_PUBLISH = 100;

async function main(): Promise<void> {
  const c = readConfig(
    {
      KAFKA_BROKERS: list('Kafka bootstrap brokers', ['127.0.0.1:9092']),
      KAFKA_REPLICATION_FACTOR: int('replication factor of the topics created', 1, 1, 5),
    },
    process.env,
  );
  const lanesList = (process.argv[2] ?? '1,2,3,6').split(',').map(Number);
  const rounds = Number(process.argv[3] ?? 3);
  const seconds = Number(process.argv[4] ?? 5);
  const logger = createLogger('measure-producer-lanes');
  const kafka = createKafka({ brokers: c.KAFKA_BROKERS, clientId: 'measure-producer-lanes' });
  const users = Array.from({ length: 5_000 }, () => `user-${randomBytes(6).toString('hex')}`);
  const batches: OutgoingMessage[][] = [];
  const pool = avroMessages(20_000);
  for (let i = 0; i < pool.length; i += PER_PUBLISH) {
    batches.push(
      pool.slice(i, i + PER_PUBLISH).map((m, j) => ({
        key: users[(i + j * 7919) % users.length] as string,
        value: m.value ?? Buffer.alloc(0),
        headers: m.headers,
      })),
    );
  }
  const results = new Map<number, { perS: number; cpuUs: number }[]>();
  for (let round = 0; round < rounds; round++) {
    for (const lanes of lanesList) {
      const producer = new BatchingProducer({
        kafka,
        topic: `measure-lanes-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`,
        partitions: 6,
        replicationFactor: c.KAFKA_REPLICATION_FACTOR,
        logger,
        maxSendBytes: 900 * 1024,
        maxQueuedBytes: 64 * 1024 * 1024,
        publishTimeoutMs: 30_000,
        compression: 'gzip',
        idempotent: true,
        lanes,
      });
      await producer.start();
      let sent = 0;
      const started = performance.now();
      const cpu = process.cpuUsage();
      const until = started + seconds * 1000;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async (_, w) => {
          for (let i = w; performance.now() < until; i += CONCURRENCY) {
            await producer.publish(batches[i % batches.length] as OutgoingMessage[]);
            sent += PER_PUBLISH;
          }
        }),
      );
      const used = process.cpuUsage(cpu);
      const r = {
        perS: Math.round(sent / ((performance.now() - started) / 1000)),
        cpuUs: Math.round(((used.user + used.system) / sent) * 10) / 10,
      };
      await producer.close();
      results.set(lanes, [...(results.get(lanes) ?? []), r]);
      logger.info({ round, lanes, eventsPerS: r.perS, cpuUsPerEvent: r.cpuUs }, 'measured');
    }
  }
  for (const [lanes, rs] of results) {
    const mean = (xs: number[]) => Math.round(xs.reduce((a, b) => a + b, 0) / xs.length);
    process.stdout.write(
      `lanes ${lanes}: events/s ${rs.map((r) => r.perS).join(' / ')} (mean ${mean(rs.map((r) => r.perS))}), ` +
        `CPU us/event ${rs.map((r) => r.cpuUs).join(' / ')}\n`,
    );
  }
}

await main();
