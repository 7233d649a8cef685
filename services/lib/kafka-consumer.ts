/**
 * The consumer side of the Kafka wrapper (builds on kafka.ts; nothing else imports kafkajs).
 *
 * A group member that hands each fetched partition batch to a handler and never resolves or
 * commits an offset by itself: kafkajs's auto-resolve and auto-commit are off, and the handler
 * calls `scope.commit(next)` once everything up to `next` is durable downstream.
 *
 * Why the handler holds its batch until the write is acknowledged: in kafkajs the fetch position
 * IS the resolved offset, so a handler that returned without resolving would get the same
 * messages again on the next fetch. Holding the batch (heart-beating meanwhile) means fetching
 * stops while the sink is slow or down; that is the backpressure, and memory stays at one fetch.
 * Commits carry the group generation, so a commit from a member whose partitions were revoked in
 * a rebalance is refused by the broker; the ledger below refuses it earlier, locally.
 */
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import type { Logger } from './logger.ts';

export interface ConsumedMessage {
  readonly offset: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: Readonly<Record<string, string>>;
  /** Broker or producer timestamp (epoch ms as a string, as Kafka gives it). */
  readonly timestamp: string;
}

export interface PartitionBatch {
  readonly topic: string;
  readonly partition: number;
  readonly messages: readonly ConsumedMessage[];
  /** Log end offset of the partition when fetched: `highWatermark - next` is the lag after a commit. */
  readonly highWatermark: string;
}

export interface BatchScope {
  /** Keeps the membership alive during a long wait; throws when the group is rebalancing. */
  readonly heartbeat: () => Promise<void>;
  /**
   * Resolves and commits `nextOffset` (the offset after the last durable message). Refused (false)
   * when the partition is no longer owned or the offset would move backwards.
   */
  readonly commit: (nextOffset: string) => Promise<boolean>;
}

export type BatchHandler = (batch: PartitionBatch, scope: BatchScope) => Promise<void>;

export interface GroupConsumerOptions {
  readonly kafka: Kafka;
  readonly groupId: string;
  readonly topic: string;
  readonly logger: Logger;
  readonly sessionTimeoutMs?: number;
  readonly heartbeatIntervalMs?: number;
  readonly rebalanceTimeoutMs?: number;
  /** The broker holds a fetch up to this long waiting for `minBytes` (time-based batching). */
  readonly maxWaitTimeMs: number;
  readonly minBytes: number;
  /** Upper bound of one fetch, in total and per partition. */
  readonly maxBytes: number;
  /** Partitions handled at once; at least the partition count so one fetch round fills one batch. */
  readonly concurrency: number;
  /** Called after every join with the partitions this member now owns. */
  readonly onAssignment?: (partitions: readonly number[]) => void;
  /** Called when the group starts rebalancing (before the new assignment). */
  readonly onRebalance?: () => void;
  /** Called when kafkajs gave up and will not restart the consumer. */
  readonly onFatal?: (err: Error) => void;
}

export interface GroupConsumer {
  readonly start: (handler: BatchHandler) => Promise<void>;
  /** Stops fetching new batches for the topic (in-flight batches continue). */
  readonly pause: () => void;
  readonly resume: () => void;
  readonly isPaused: () => boolean;
  /** Partitions owned right now. */
  readonly assignment: () => readonly number[];
  /** Stops fetching, waits for in-flight handlers, leaves the group, disconnects. Idempotent. */
  readonly stop: () => Promise<void>;
}

/**
 * Per-partition commit ledger. Invariant: a commit is sent only for a partition this member owns
 * in the current generation, and only forward (ascending); a handler that finished after its
 * partition was revoked (or revoked and given back) cannot move the group's offset.
 */
export class CommitLedger {
  private readonly owned = new Map<number, { generation: number; committed: bigint }>();
  private generation = 0;

  /** New assignment; returns the generation handlers must present with their commits. */
  assign(partitions: readonly number[]): number {
    this.generation += 1;
    const next = new Map<number, { generation: number; committed: bigint }>();
    for (const p of partitions) next.set(p, { generation: this.generation, committed: -1n });
    this.owned.clear();
    for (const [p, v] of next) this.owned.set(p, v);
    return this.generation;
  }

  /** Everything revoked (rebalance started): no commit may go out until the next assignment. */
  revokeAll(): void {
    this.owned.clear();
  }

  current(): number {
    return this.generation;
  }

  partitions(): number[] {
    return [...this.owned.keys()].sort((a, b) => a - b);
  }

  /** True when `next` may be committed for `partition` by a handler started in `generation`. */
  mayCommit(partition: number, generation: number, next: bigint): boolean {
    const o = this.owned.get(partition);
    return o !== undefined && o.generation === generation && next > o.committed;
  }

  committed(partition: number, next: bigint): void {
    const o = this.owned.get(partition);
    if (o && next > o.committed) o.committed = next;
  }
}

function headersOf(raw: EachBatchPayload['batch']['messages'][number]['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw ?? {})) {
    const first = Array.isArray(v) ? v[0] : v;
    if (first !== undefined) out[k] = first.toString();
  }
  return out;
}

export function createGroupConsumer(o: GroupConsumerOptions): GroupConsumer {
  const log = o.logger.child({ component: 'kafka-consumer', groupId: o.groupId, topic: o.topic });
  const consumer: Consumer = o.kafka.consumer({
    groupId: o.groupId,
    sessionTimeout: o.sessionTimeoutMs ?? 30_000,
    heartbeatInterval: o.heartbeatIntervalMs ?? 3_000,
    rebalanceTimeout: o.rebalanceTimeoutMs ?? 60_000,
    maxWaitTimeInMs: o.maxWaitTimeMs,
    minBytes: o.minBytes,
    maxBytes: o.maxBytes,
    maxBytesPerPartition: o.maxBytes,
    allowAutoTopicCreation: false,
  });
  const ledger = new CommitLedger();
  let paused = false;
  let started = false;
  let stopping: Promise<void> | undefined;

  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    const partitions = [...(payload.memberAssignment[o.topic] ?? [])].sort((a, b) => a - b);
    const generation = ledger.assign(partitions);
    log.info({ partitions, generation, memberId: payload.memberId }, 'partitions assigned');
    o.onAssignment?.(partitions);
  });
  consumer.on(consumer.events.REBALANCING, () => {
    ledger.revokeAll();
    log.info('group rebalancing; commits held until the new assignment');
    o.onRebalance?.();
  });
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    log.error({ err: payload.error, restart: payload.restart }, 'consumer crashed');
    if (!payload.restart) o.onFatal?.(payload.error);
  });

  const start = async (handler: BatchHandler): Promise<void> => {
    if (started) return;
    started = true;
    await consumer.connect();
    // A new group starts at the earliest offset: an analytics pipeline must not skip history.
    await consumer.subscribe({ topic: o.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: o.concurrency,
      eachBatch: async (payload) => {
        const { batch } = payload;
        if (batch.messages.length === 0) return;
        const generation = ledger.current();
        await handler(
          {
            topic: batch.topic,
            partition: batch.partition,
            highWatermark: batch.highWatermark,
            messages: batch.messages.map((m) => ({
              offset: m.offset,
              key: m.key ?? null,
              value: m.value ?? null,
              headers: headersOf(m.headers),
              timestamp: m.timestamp,
            })),
          },
          {
            heartbeat: () => payload.heartbeat(),
            commit: async (nextOffset) => {
              const next = BigInt(nextOffset);
              if (!ledger.mayCommit(batch.partition, generation, next)) {
                log.info(
                  { partition: batch.partition, offset: nextOffset, generation },
                  'commit refused: partition not owned in this generation',
                );
                return false;
              }
              // resolveOffset moves kafkajs's fetch position; the explicit commit makes it durable.
              payload.resolveOffset((next - 1n).toString());
              await payload.commitOffsetsIfNecessary({
                topics: [
                  { topic: batch.topic, partitions: [{ partition: batch.partition, offset: nextOffset }] },
                ],
              });
              ledger.committed(batch.partition, next);
              return true;
            },
          },
        );
      },
    });
  };

  return {
    start,
    pause: () => {
      if (paused) return;
      paused = true;
      consumer.pause([{ topic: o.topic }]);
    },
    resume: () => {
      if (!paused) return;
      paused = false;
      consumer.resume([{ topic: o.topic }]);
    },
    isPaused: () => paused,
    assignment: () => ledger.partitions(),
    stop: () => {
      stopping ??= (async () => {
        if (!started) return;
        // stop() waits for in-flight handlers (which commit after their flush), then leaves the group.
        await consumer.stop();
        await consumer.disconnect();
      })();
      return stopping;
    },
  };
}
