/**
 * The one place that imports kafkajs (with kafka-producer.ts and kafka-consumer.ts beside it, which
 * build on this file). Swapping the Kafka client means editing this folder only.
 */
import { type Admin, type ITopicMetadata, Kafka, type KafkaConfig, type LogEntry, logLevel } from 'kafkajs';
import { KAFKA_CODES } from './error-codes.ts';
import { PipelineError } from './errors.ts';
import type { Logger } from './logger.ts';

export type { Admin };
export { Kafka };

export interface KafkaOptions {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly logger?: Logger;
  readonly connectionTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
  /** kafkajs's own reconnect retries for a call; callers that need backoff of their own set this low. */
  readonly retries?: number;
}

const LEVELS: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/** kafkajs log entries go to a pino child, one structured line each. */
function pinoLogCreator(logger: Logger): KafkaConfig['logCreator'] {
  const log = logger.child({ component: 'kafkajs' });
  return () =>
    ({ namespace, level, log: entry }: LogEntry) => {
      const { message, timestamp: _ts, logger: _l, ...extra } = entry;
      log[LEVELS[level] ?? 'info']({ namespace, ...extra }, message);
    };
}

export function createKafka(o: KafkaOptions): Kafka {
  return new Kafka({
    clientId: o.clientId,
    brokers: [...o.brokers],
    connectionTimeout: o.connectionTimeoutMs ?? 3_000,
    requestTimeout: o.requestTimeoutMs ?? 30_000,
    retry: { retries: o.retries ?? 5, initialRetryTime: 300, maxRetryTime: 5_000 },
    ...(o.logger
      ? { logCreator: pinoLogCreator(o.logger), logLevel: logLevel.WARN }
      : { logLevel: logLevel.NOTHING }),
  });
}

export interface TopicSpec {
  readonly topic: string;
  readonly partitions: number;
  readonly replicationFactor?: number;
  readonly configs?: Readonly<Record<string, string>>;
}

/**
 * Creates the topics that do not exist yet (existing topics are left as they are) and returns once
 * every partition of every topic has a leader. A replication factor above the number of live
 * brokers is refused first, with the fix in the message (KAFKA_REPLICATION_FACTOR_TOO_HIGH, not
 * retriable): Kafka's own answer is an aggregate "Topic creation errors" that names neither. kafkajs's own `waitForLeaders` retries only
 * LEADER_NOT_AVAILABLE, but a KRaft broker can answer UNKNOWN_TOPIC_OR_PARTITION for a moment
 * after the create returned, so readiness is polled here with both treated as "not yet".
 */
export async function ensureTopics(
  admin: Admin,
  specs: readonly TopicSpec[],
  timeoutMs = 30_000,
): Promise<void> {
  await ensureTopicsMetadata(admin, specs, timeoutMs);
}

/**
 * ensureTopics, returning the metadata that showed every leader: asking again right after may
 * reach a broker not yet told of a new topic (UNKNOWN_TOPIC_OR_PARTITION).
 */
export async function ensureTopicsMetadata(
  admin: Admin,
  specs: readonly TopicSpec[],
  timeoutMs = 30_000,
): Promise<ITopicMetadata[]> {
  const existing = new Set(await admin.listTopics());
  const missing = specs.filter((s) => !existing.has(s.topic));
  if (missing.length > 0) {
    const rf = Math.max(...missing.map((s) => s.replicationFactor ?? 1));
    if (rf > 1) {
      const { brokers } = await admin.describeCluster();
      if (brokers.length < rf)
        throw new PipelineError(
          KAFKA_CODES.replicationFactorTooHigh,
          `cannot create ${missing.map((s) => s.topic).join(', ')} with replication factor ${rf}: ` +
            `the cluster has ${brokers.length} live broker(s); set KAFKA_REPLICATION_FACTOR to at most ${brokers.length} ` +
            '(1 on a single broker, 3 on the local 3-node cluster)',
        );
    }
    await admin.createTopics({
      waitForLeaders: false,
      topics: missing.map((s) => ({
        topic: s.topic,
        numPartitions: s.partitions,
        replicationFactor: s.replicationFactor ?? 1,
        configEntries: Object.entries(s.configs ?? {}).map(([name, value]) => ({ name, value })),
      })),
    });
  }
  const topics = specs.map((s) => s.topic);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const { topics: meta } = await admin.fetchTopicMetadata({ topics });
      if (
        meta.length === topics.length &&
        meta.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))
      ) {
        return meta;
      }
    } catch (err) {
      const type = (err as { type?: unknown }).type;
      if (type !== 'UNKNOWN_TOPIC_OR_PARTITION' && type !== 'LEADER_NOT_AVAILABLE') throw err;
    }
    if (Date.now() > deadline)
      throw new Error(`topics ${topics.join(', ')} have no partition leaders after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export interface PartitionOffsets {
  readonly partition: number;
  /** Log end offset: the offset the next message will get. */
  readonly high: bigint;
  /**
   * The group's committed offset (the next message it will read); the low watermark when the group
   * has committed nothing for the partition, since a new group starts from the earliest offset.
   */
  readonly committed: bigint;
}

/** Per partition of `topic`, its high watermark and `groupId`'s committed offset (two admin calls). */
export async function groupOffsets(
  admin: Admin,
  groupId: string,
  topic: string,
): Promise<PartitionOffsets[]> {
  const [ends, [committed]] = await Promise.all([
    admin.fetchTopicOffsets(topic),
    admin.fetchOffsets({ groupId, topics: [topic] }),
  ]);
  const byPartition = new Map((committed?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
  return ends.map((e) => {
    const c = byPartition.get(e.partition);
    return {
      partition: e.partition,
      high: BigInt(e.high),
      committed: c === undefined || c < 0n ? BigInt(e.low) : c,
    };
  });
}
