/**
 * Re-drives dead-lettered messages after a fix: `node services/consumer/redrive.ts [--reason R]...
 * [--dry-run]`. Reads the DLQ topic (KAFKA_DLQ_TOPIC) up to its end as of the start, and produces
 * each message (original key, value and headers, the dlq-* headers dropped, dlq-redrive-count
 * incremented) back to the topic it came from; the consumer then processes it like any message,
 * and a message that is still poison lands in the DLQ again, with its count.
 *
 * Progress is the committed offset of the group `<KAFKA_GROUP_ID>-redrive` on the DLQ, committed
 * only after the re-produced messages are acknowledged (acks=all), so an interrupted run resumes
 * where it stopped and re-drives nothing twice except the batch in flight. Messages filtered out by
 * --reason are passed over (counted, not re-driven); re-drive those later with a new
 * REDRIVE_GROUP_ID.
 */
import { parseArgs } from 'node:util';
import { configOrExit, readConfig, str } from '../lib/config.ts';
import { createKafka } from '../lib/kafka.ts';
import { createGroupConsumer } from '../lib/kafka-consumer.ts';
import { createLogger } from '../lib/logger.ts';
import { consumerSpec } from './config.ts';
import { DLQ_HEADERS } from './dlq.ts';

const spec = {
  KAFKA_BROKERS: consumerSpec.KAFKA_BROKERS,
  KAFKA_TOPIC: consumerSpec.KAFKA_TOPIC,
  KAFKA_DLQ_TOPIC: consumerSpec.KAFKA_DLQ_TOPIC,
  KAFKA_GROUP_ID: consumerSpec.KAFKA_GROUP_ID,
  REDRIVE_GROUP_ID: str('group that records re-drive progress on the DLQ', ''),
  LOG_LEVEL: consumerSpec.LOG_LEVEL,
};

const DLQ_HEADER_NAMES = new Set<string>(Object.values(DLQ_HEADERS));

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { reason: { type: 'string', multiple: true }, 'dry-run': { type: 'boolean', default: false } },
  });
  const c = configOrExit('redrive', () => readConfig(spec, process.env));
  const logger = createLogger('redrive', c.LOG_LEVEL);
  const reasons = new Set(values.reason ?? []);
  const dryRun = values['dry-run'] ?? false;
  const groupId = c.REDRIVE_GROUP_ID || `${c.KAFKA_GROUP_ID}-redrive`;
  const kafka = createKafka({ brokers: c.KAFKA_BROKERS, clientId: 'activity-redrive', logger });

  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map(
    (await admin.fetchTopicOffsets(c.KAFKA_DLQ_TOPIC)).map((p) => [p.partition, BigInt(p.high)]),
  );
  const [committed] = await admin.fetchOffsets({ groupId, topics: [c.KAFKA_DLQ_TOPIC] });
  await admin.disconnect();
  const pending = new Set<number>();
  for (const [partition, high] of ends) {
    const at = BigInt(committed?.partitions.find((p) => p.partition === partition)?.offset ?? '-1');
    if (high > 0n && at < high) pending.add(partition);
  }
  const counts = { redriven: 0, skipped: 0 };
  if (pending.size === 0) {
    logger.info({ groupId, ...counts }, 'nothing to re-drive');
    return;
  }

  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
  });
  await producer.connect();
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const consumer = createGroupConsumer({
    kafka,
    groupId,
    topic: c.KAFKA_DLQ_TOPIC,
    logger,
    maxWaitTimeMs: 500,
    minBytes: 1,
    maxBytes: 4_194_304,
    concurrency: Math.max(1, ends.size),
  });
  // A dry run commits nothing, so kafkajs may hand the same messages again; count each once.
  const seen = new Map<number, bigint>();
  await consumer.start(async (batch, scope) => {
    const end = ends.get(batch.partition) ?? 0n;
    const byTopic = new Map<
      string,
      { key: Buffer | null; value: Buffer | null; headers: Record<string, string> }[]
    >();
    let last = -1n;
    for (const m of batch.messages) {
      if (BigInt(m.offset) >= end) break;
      last = BigInt(m.offset);
      if (last <= (seen.get(batch.partition) ?? -1n)) continue;
      seen.set(batch.partition, last);
      const reason = m.headers[DLQ_HEADERS.reason] ?? '';
      if (reasons.size > 0 && !reasons.has(reason)) {
        counts.skipped += 1;
        continue;
      }
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(m.headers)) if (!DLQ_HEADER_NAMES.has(k)) headers[k] = v;
      headers[DLQ_HEADERS.redriveCount] = String(Number(m.headers[DLQ_HEADERS.redriveCount] ?? '0') + 1);
      const topic = m.headers[DLQ_HEADERS.sourceTopic] || c.KAFKA_TOPIC;
      const list = byTopic.get(topic) ?? [];
      list.push({ key: m.key, value: m.value, headers });
      byTopic.set(topic, list);
      counts.redriven += 1;
    }
    if (!dryRun) {
      for (const [topic, messages] of byTopic) await producer.send({ topic, acks: -1, messages });
    }
    // Re-produced and acknowledged: the DLQ offset may move past them (a dry run moves nothing).
    if (last >= 0n && !dryRun) await scope.commit((last + 1n).toString());
    if (last + 1n >= end) {
      pending.delete(batch.partition);
      if (pending.size === 0) finish();
    }
  });
  await finished;
  await consumer.stop();
  await producer.disconnect();
  logger.info({ groupId, dryRun, reasons: [...reasons], ...counts }, 're-drive done');
}

main().catch((err: unknown) => {
  createLogger('redrive').fatal({ err }, 're-drive failed');
  process.exit(1);
});
