/**
 * Dead-letter topic: poison messages leave the partition with their original key, value and
 * headers, plus headers saying why (reason, error code, message), where from (topic, partition,
 * offset) and when (dead-lettered at; original timestamp). Sends are acks=all and awaited before
 * the offset of the poison message is committed, so a poison message is never simply dropped.
 */
import type { Kafka } from '../lib/kafka.ts';
import type { ConsumedMessage } from '../lib/kafka-consumer.ts';
import type { Logger } from '../lib/logger.ts';
import type { PoisonReason } from './decode.ts';

export const DLQ_HEADERS = {
  reason: 'dlq-reason',
  errorCode: 'dlq-error-code',
  errorMessage: 'dlq-error-message',
  sourceTopic: 'dlq-source-topic',
  sourcePartition: 'dlq-source-partition',
  sourceOffset: 'dlq-source-offset',
  sourceTimestamp: 'dlq-source-timestamp',
  deadLetteredAt: 'dlq-dead-lettered-at',
  redriveCount: 'dlq-redrive-count',
} as const;

export interface DeadLetter {
  readonly topic: string;
  readonly partition: number;
  readonly message: ConsumedMessage;
  readonly reason: PoisonReason;
  readonly code: string;
  readonly error: string;
}

export interface DeadLetterQueue {
  readonly send: (letters: readonly DeadLetter[]) => Promise<void>;
  readonly close: () => Promise<void>;
}

export async function createDeadLetterQueue(o: {
  kafka: Kafka;
  topic: string;
  logger: Logger;
  now?: () => number;
  onSent?: (reason: PoisonReason, count: number) => void;
}): Promise<DeadLetterQueue> {
  const log = o.logger.child({ component: 'dlq', topic: o.topic });
  const now = o.now ?? Date.now;
  const producer = o.kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
  });
  await producer.connect();
  return {
    send: async (letters) => {
      if (letters.length === 0) return;
      const at = new Date(now()).toISOString();
      await producer.send({
        topic: o.topic,
        acks: -1,
        messages: letters.map((l) => ({
          key: l.message.key,
          value: l.message.value,
          headers: {
            ...l.message.headers,
            [DLQ_HEADERS.reason]: l.reason,
            [DLQ_HEADERS.errorCode]: l.code,
            [DLQ_HEADERS.errorMessage]: l.error.slice(0, 1_000),
            [DLQ_HEADERS.sourceTopic]: l.topic,
            [DLQ_HEADERS.sourcePartition]: String(l.partition),
            [DLQ_HEADERS.sourceOffset]: l.message.offset,
            [DLQ_HEADERS.sourceTimestamp]: l.message.timestamp,
            [DLQ_HEADERS.deadLetteredAt]: at,
          },
        })),
      });
      const byReason = new Map<PoisonReason, number>();
      for (const l of letters) byReason.set(l.reason, (byReason.get(l.reason) ?? 0) + 1);
      for (const [reason, count] of byReason) {
        log.warn({ reason, count }, 'dead-lettered');
        o.onSent?.(reason, count);
      }
    },
    close: () => producer.disconnect(),
  };
}
