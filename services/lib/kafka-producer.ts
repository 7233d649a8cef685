/**
 * The producer side of the Kafka wrapper (builds on kafka.ts; nothing else imports kafkajs).
 *
 * `publish(messages)` resolves only after the broker acknowledged every one of them with acks=all,
 * and rejects with a PipelineError otherwise, so a caller can tell a sender "durable" or "retry".
 *
 * Sends travel in lanes. A lane is one idempotent kafkajs producer that owns a fixed share of the
 * topic's partitions (partition p belongs to lane p % lanes) and keeps exactly ONE send in flight:
 * kafkajs's idempotent producer requires that (maxInFlightRequests 1; two concurrent sends of one
 * producer are refused by the broker as out-of-order sequence numbers). A message's partition is
 * computed here as Kafka's default partitioner does (key-partition.ts: murmur2 of the key), so all of a
 * key's messages go through one lane, one send after the other: per-key order and idempotence hold
 * per lane, while the lanes send in parallel. Within a lane, publishes from concurrent callers are
 * coalesced: while its send is in flight, everything that arrives for its partitions queues up and
 * goes out in the next send, so under load one produce request carries many HTTP requests' events.
 *
 * Why lanes of kafkajs and not @platformatic/kafka's producer (bench scenario 6: 2.0x kafkajs's one
 * send in flight, with 8 in flight): reproduced on the 3-node cluster, 8 sends in flight on one of
 * its idempotent producers put acknowledged messages of a key out of order when a leader was killed
 * (a later batch re-sent under a new producer id overtook an earlier one); in lanes of one send in
 * flight it held under the fault tests, but the collector measured no faster on it in bench
 * scenario 1 and 23 MB bigger at rest (docs/KAFKA.md, "Why not @platformatic/kafka"). On one local
 * broker the producer is CPU-bound and lanes change little; on the 3-broker cluster (acks=all waits
 * for a second replica) 2 lanes sent 1.25x the events/s of one (docs/KAFKA.md).
 */
import { CompressionTypes, type Kafka, type PartitionMetadata, type Producer } from 'kafkajs';
import { PRODUCER_CODES } from './error-codes.ts';
import { PipelineError } from './errors.ts';
import { ensureTopicsMetadata } from './kafka.ts';
import { keyPartition } from './key-partition.ts';
import type { Logger } from './logger.ts';

export interface OutgoingMessage {
  readonly key: string;
  readonly value: Buffer;
  readonly headers: Readonly<Record<string, string>>;
}

export interface ProducerMetricsSink {
  /** One completed send: its message count, payload bytes, duration and outcome. */
  readonly onSend: (s: { messages: number; bytes: number; seconds: number; ok: boolean }) => void;
  /** Bytes queued or in flight right now. */
  readonly onQueuedBytes: (bytes: number) => void;
}

export interface BatchingProducerOptions {
  readonly kafka: Kafka;
  readonly topic: string;
  /** Partition count used when the topic does not exist yet. */
  readonly partitions: number;
  readonly replicationFactor?: number;
  readonly logger: Logger;
  /** Upper bound of one produce request's payload bytes (below the broker's message.max.bytes). */
  readonly maxSendBytes: number;
  /** Queued + in-flight bytes above which publish() is refused at once (bounded memory). */
  readonly maxQueuedBytes: number;
  /** A publish() that has not been acknowledged after this long is rejected as retriable. */
  readonly publishTimeoutMs: number;
  readonly compression: 'gzip' | 'none';
  readonly idempotent: boolean;
  /** Producers sending in parallel, one send in flight each (capped at the partition count). */
  readonly lanes?: number;
  readonly metrics?: ProducerMetricsSink;
}

/** Lanes when the caller does not say: the steadiest of 1, 2, 3 and 6 on the 3-broker cluster (docs/KAFKA.md). */
export const DEFAULT_LANES = 2;

/** One publish() call; its messages travel as slices, possibly over several sends. */
interface Pending {
  /** When publish() was called (Date.now()), for backlogMs. */
  readonly enqueuedAt: number;
  /** Messages of this publish not yet acknowledged. */
  remaining: number;
  settled: boolean;
  readonly resolve: () => void;
  readonly reject: (err: PipelineError) => void;
  readonly timer: NodeJS.Timeout;
}

/** A message with its partition and its size (counted once, against the queue bound). */
interface Routed {
  readonly message: OutgoingMessage;
  readonly partition: number;
  readonly bytes: number;
}

interface Slice {
  readonly pending: Pending;
  readonly messages: readonly Routed[];
}

/** One idempotent producer, the partitions p with p % lanes === its index, and their queue. */
class Lane {
  producer!: Producer;
  /** The last send failed on the idempotent producer: the next send starts a new one first. */
  replace = false;
  connected = false;
  queue: Slice[] = [];
  sending: Promise<void> | undefined;
  /** enqueuedAt of the oldest publish in the send in flight. */
  inFlightSince: number | undefined;
}

/**
 * kafkajs errors that describe the request rather than the cluster: retrying the same bytes fails
 * the same way. Classified by kafkajs's error type name and Kafka's numeric-backed error type, never
 * by message text.
 */
const NON_RETRIABLE_TYPES = new Set([
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'INVALID_RECORD',
  'CORRUPT_MESSAGE',
  'INVALID_REQUIRED_ACKS',
  'TOPIC_AUTHORIZATION_FAILED',
  'CLUSTER_AUTHORIZATION_FAILED',
  'UNSUPPORTED_COMPRESSION_TYPE',
]);

export function classifyKafkaError(err: unknown): PipelineError {
  if (err instanceof PipelineError) return err;
  for (
    let e: unknown = err;
    e instanceof Error;
    e = (e as { originalError?: unknown }).originalError ?? e.cause
  ) {
    const type = (e as { type?: unknown }).type;
    if (typeof type === 'string' && NON_RETRIABLE_TYPES.has(type)) {
      return new PipelineError(PRODUCER_CODES.rejected, `Kafka rejected the messages (${type})`, {
        cause: err,
      });
    }
  }
  return new PipelineError(PRODUCER_CODES.unavailable, 'Kafka did not acknowledge the messages', {
    retriable: true,
    cause: err,
  });
}

function messageBytes(m: OutgoingMessage): number {
  let n = m.key.length + m.value.length + 16;
  for (const [k, v] of Object.entries(m.headers)) n += k.length + v.length;
  return n;
}

export class BatchingProducer {
  private readonly o: BatchingProducerOptions;
  private readonly log: Logger;
  /** Empty until start() read the topic's partitions. */
  private lanes: Lane[] = [];
  /**
   * The topic's partitions as read at start(). Partitions added later get no messages until a
   * restart; adding partitions moves keys to other partitions anyway, whatever the client.
   */
  private partitionMetadata: PartitionMetadata[] = [];
  private queuedBytes = 0;
  private closed = false;
  private lastSendOk = true;
  private probe: { at: number; result: boolean } | undefined;

  constructor(o: BatchingProducerOptions) {
    this.o = o;
    this.log = o.logger.child({ component: 'kafka-producer' });
  }

  private newProducer(lane: Lane): Producer {
    const producer = this.o.kafka.producer({
      idempotent: this.o.idempotent,
      // Required by the idempotent producer; without it, order across retries is what keeps it at 1.
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
    });
    producer.on(producer.events.CONNECT, () => {
      if (producer === lane.producer) lane.connected = true;
    });
    producer.on(producer.events.DISCONNECT, () => {
      if (producer === lane.producer) lane.connected = false;
    });
    return producer;
  }

  /**
   * Why a failed send retires the lane's idempotent producer: kafkajs takes back a failed batch's
   * sequence numbers, but the leader may have appended it (acks=all timed out waiting for replicas
   * that were down). The next batch would reuse those numbers, and the broker would refuse it and
   * every later one (OutOfOrderSequence: the collector answered 503 for good once two of three
   * brokers had been down, test/faults/kafka-leader-kill.test.ts), or, were its size the same, take
   * it for a retry of the appended batch and acknowledge it without writing it. A new producer gets
   * a new producer id, whose numbers start afresh (the Java client bumps the epoch for the same
   * reason).
   */
  private async renewProducer(lane: Lane): Promise<void> {
    const old = lane.producer;
    lane.connected = false;
    lane.replace = false;
    lane.producer = this.newProducer(lane);
    await old.disconnect().catch(() => undefined);
    this.log.info('idempotent producer replaced after a failed send');
    await lane.producer.connect();
  }

  /**
   * Connects and creates the topic if it is missing, then reads its partitions and connects one
   * producer per lane. Throws when Kafka cannot be reached.
   */
  async start(): Promise<void> {
    const admin = this.o.kafka.admin();
    try {
      await admin.connect();
      const [meta] = await ensureTopicsMetadata(admin, [
        {
          topic: this.o.topic,
          partitions: this.o.partitions,
          ...(this.o.replicationFactor === undefined ? {} : { replicationFactor: this.o.replicationFactor }),
        },
      ]);
      this.partitionMetadata = meta?.partitions ?? [];
    } catch (cause) {
      // A setting Kafka refuses (replication factor) says so; anything else is Kafka being away.
      if (cause instanceof PipelineError && !cause.retriable) throw cause;
      throw new PipelineError(PRODUCER_CODES.unavailable, `cannot prepare topic ${this.o.topic}`, {
        retriable: true,
        cause,
      });
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    const n = Math.max(1, Math.min(this.o.lanes ?? DEFAULT_LANES, this.partitionMetadata.length));
    this.lanes = Array.from({ length: n }, () => {
      const lane = new Lane();
      lane.producer = this.newProducer(lane);
      return lane;
    });
    await Promise.all(this.lanes.map((l) => l.producer.connect()));
  }

  /**
   * How long the oldest unacknowledged publish has waited, in ms (0 when nothing waits): the time a
   * new publish would wait before its acks, give or take one send. Unlike queued bytes, it measures
   * what a sender feels, whatever the broker's speed today; the collector sheds load on it.
   */
  backlogMs(now: number = Date.now()): number {
    let oldest = now;
    for (const l of this.lanes) {
      oldest = Math.min(oldest, l.queue[0]?.pending.enqueuedAt ?? now, l.inFlightSince ?? now);
    }
    return Math.max(0, now - oldest);
  }

  /** True while every lane is connected and the last send succeeded (a failed send flips it until one succeeds). */
  healthy(): boolean {
    return this.lanes.length > 0 && this.lanes.every((l) => l.connected) && this.lastSendOk && !this.closed;
  }

  /**
   * Resolves when Kafka acknowledged (acks=all) every message; rejects with a retriable
   * PipelineError when the queue is full, Kafka is unreachable or the ack did not come in time.
   */
  publish(messages: readonly OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return Promise.resolve();
    if (this.closed) {
      return Promise.reject(
        new PipelineError(PRODUCER_CODES.closed, 'producer is shutting down', { retriable: true }),
      );
    }
    if (this.lanes.length === 0) {
      return Promise.reject(
        new PipelineError(PRODUCER_CODES.unavailable, 'producer not started', { retriable: true }),
      );
    }
    const routed: Routed[] = [];
    let bytes = 0;
    for (const message of messages) {
      const partition = keyPartition(message.key, this.partitionMetadata.length);
      const b = messageBytes(message);
      routed.push({ message, partition, bytes: b });
      bytes += b;
    }
    if (this.queuedBytes + bytes > this.o.maxQueuedBytes) {
      return Promise.reject(
        new PipelineError(
          PRODUCER_CODES.overloaded,
          `producer queue full (${this.queuedBytes} + ${bytes} bytes > ${this.o.maxQueuedBytes})`,
          { retriable: true },
        ),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const p: Pending = {
        enqueuedAt: Date.now(),
        remaining: messages.length,
        settled: false,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.fail(
            p,
            new PipelineError(
              PRODUCER_CODES.timeout,
              `no acknowledgement within ${this.o.publishTimeoutMs} ms`,
              {
                retriable: true,
              },
            ),
          );
        }, this.o.publishTimeoutMs),
      };
      const n = this.lanes.length;
      const byLane = new Map<number, Routed[]>();
      for (const r of routed) {
        const i = r.partition % n;
        const list = byLane.get(i);
        if (list === undefined) byLane.set(i, [r]);
        else list.push(r);
      }
      this.setQueuedBytes(this.queuedBytes + bytes);
      for (const [i, list] of byLane) {
        const lane = this.lanes[i] as Lane;
        lane.queue.push({ pending: p, messages: list });
        this.kick(lane);
      }
    });
  }

  /** Sends what is queued, then disconnects. Later publish() calls are refused. */
  async close(): Promise<void> {
    this.closed = true;
    for (;;) {
      const busy = this.lanes.filter((l) => l.sending !== undefined || l.queue.length > 0);
      if (busy.length === 0) break;
      for (const l of busy) this.kick(l);
      await Promise.all(busy.map((l) => l.sending));
    }
    await Promise.all(this.lanes.map((l) => l.producer.disconnect()));
  }

  /**
   * Readiness probe: the producer is healthy (connected, last send ok) and the cluster answers a
   * metadata request for the topic now. A failed send leaves the producer unhealthy until a send
   * or this probe succeeds, so a collector taken out of rotation comes back without traffic.
   * Results are cached for a second so probe storms cost one request.
   */
  async check(timeoutMs: number): Promise<boolean> {
    if (this.closed) return false;
    const now = Date.now();
    if (this.probe !== undefined && now - this.probe.at < 1_000) return this.probe.result;
    const admin = this.o.kafka.admin();
    let timer: NodeJS.Timeout | undefined;
    let result = false;
    try {
      await Promise.race([
        (async () => {
          await admin.connect();
          await admin.fetchTopicMetadata({ topics: [this.o.topic] });
          await Promise.all(this.lanes.filter((l) => !l.connected).map((l) => l.producer.connect()));
        })(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('readiness probe timed out')), timeoutMs);
        }),
      ]);
      this.lastSendOk = true;
      result = this.healthy();
    } catch (err) {
      this.log.debug({ err }, 'readiness probe failed');
    } finally {
      clearTimeout(timer);
      void admin.disconnect().catch(() => undefined);
    }
    this.probe = { at: now, result };
    return result;
  }

  private setQueuedBytes(n: number): void {
    this.queuedBytes = n;
    this.o.metrics?.onQueuedBytes(n);
  }

  private fail(p: Pending, err: PipelineError): void {
    if (p.settled) return;
    p.settled = true;
    clearTimeout(p.timer);
    // Messages of a failed publish that are still queued (in any lane) are dropped here, so a sender
    // told "retry" does not also get them delivered later. Those already in a send may still land:
    // at-least-once, and event_id is the dedup key downstream.
    let removed = 0;
    for (const lane of this.lanes) {
      lane.queue = lane.queue.filter((s) => {
        if (s.pending !== p) return true;
        for (const r of s.messages) removed += r.bytes;
        return false;
      });
    }
    if (removed > 0) this.setQueuedBytes(this.queuedBytes - removed);
    p.reject(err);
  }

  private kick(lane: Lane): void {
    if (lane.sending !== undefined || lane.queue.length === 0) return;
    lane.sending = this.sendNext(lane).finally(() => {
      lane.sending = undefined;
      this.kick(lane);
    });
  }

  /** Takes the lane's queued slices up to maxSendBytes (at least one message) and sends them in one request. */
  private async sendNext(lane: Lane): Promise<void> {
    const batch: Slice[] = [];
    let bytes = 0;
    let count = 0;
    while (lane.queue.length > 0) {
      const s = lane.queue[0] as Slice;
      let i = 0;
      for (; i < s.messages.length; i++) {
        const b = (s.messages[i] as Routed).bytes;
        if (count > 0 && bytes + b > this.o.maxSendBytes) break;
        bytes += b;
        count++;
      }
      if (i === s.messages.length) {
        batch.push(s);
        lane.queue.shift();
        continue;
      }
      if (i > 0) batch.push({ pending: s.pending, messages: s.messages.slice(0, i) });
      lane.queue[0] = { pending: s.pending, messages: s.messages.slice(i) };
      break;
    }
    if (batch.length === 0) return;
    // The queue is FIFO, so the batch's first slice holds its oldest publish.
    lane.inFlightSince = batch[0]?.pending.enqueuedAt;
    const started = process.hrtime.bigint();
    let ok = false;
    try {
      if (lane.replace) await this.renewProducer(lane);
      await lane.producer.send({
        topic: this.o.topic,
        acks: -1,
        compression: this.o.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None,
        messages: batch.flatMap((s) =>
          s.messages.map((r) => ({
            key: r.message.key,
            value: r.message.value,
            partition: r.partition,
            headers: { ...r.message.headers },
          })),
        ),
      });
      ok = true;
      this.lastSendOk = true;
      for (const s of batch) {
        s.pending.remaining -= s.messages.length;
        if (s.pending.remaining === 0 && !s.pending.settled) {
          s.pending.settled = true;
          clearTimeout(s.pending.timer);
          s.pending.resolve();
        }
      }
    } catch (err) {
      this.lastSendOk = false;
      if (this.o.idempotent) lane.replace = true;
      const e = classifyKafkaError(err);
      this.log.warn({ err, code: e.code, messages: count }, 'send failed');
      for (const s of batch) this.fail(s.pending, e);
    } finally {
      lane.inFlightSince = undefined;
      this.setQueuedBytes(this.queuedBytes - bytes);
      this.o.metrics?.onSend({
        messages: count,
        bytes,
        seconds: Number(process.hrtime.bigint() - started) / 1e9,
        ok,
      });
    }
  }
}
