/**
 * The producer side of the Kafka wrapper (builds on kafka.ts for the admin calls; this file is the
 * one place that imports @platformatic/kafka, kafka.ts the one that imports kafkajs).
 *
 * `publish(messages)` resolves only after the broker acknowledged every one of them with acks=all,
 * and rejects with a PipelineError otherwise, so a caller can tell a sender "durable" or "retry".
 *
 * Sends travel in lanes. A lane is one idempotent @platformatic/kafka producer that owns a fixed
 * share of the topic's partitions (partition p belongs to lane p % lanes) and keeps exactly ONE send
 * in flight. A message's partition is computed here as Kafka's default partitioner does
 * (key-partition.ts: murmur2 of the key), so all of a key's messages go through one lane, one send
 * after the other: per-key order and idempotence hold per lane, while the lanes send in parallel.
 * Within a lane, publishes from concurrent callers are coalesced: while its send is in flight,
 * everything that arrives for its partitions queues up and goes out in the next send, so under load
 * one produce request carries many HTTP requests' events.
 *
 * Why one send in flight per producer although the library allows more: with 8 sends in flight on
 * one idempotent producer, a partition leader killed mid-load made batches of one key land swapped
 * (a later batch reached the new leader first, was refused as OUT_OF_ORDER_SEQUENCE_NUMBER and re-sent
 * under a new producer id, and the earlier one followed under the old id): 405 and 22 acknowledged
 * messages out of key order in two runs, and 527 with these lanes changed to 8 sends in flight
 * (docs/KAFKA.md, "Why lanes on @platformatic/kafka"; test/faults/full/producer-order.test.ts). With
 * one send in flight there is no later batch to overtake. Against kafkajs lanes at the same settings
 * these sent 1.3-1.6x the events/s at about 0.75x the CPU per event (same section).
 */
import { findErrorBy, ProduceAcks, Producer } from '@platformatic/kafka';
import { PipelineError } from './errors.ts';
import { createKafka, ensureTopicsMetadata, type Kafka, type PartitionMetadata } from './kafka.ts';
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
  readonly brokers: readonly string[];
  readonly clientId: string;
  /**
   * Retries of one send (and of one admin call) before it fails; DEFAULT_RETRIES when not given, at
   * least MIN_RETRIES.
   */
  readonly retries?: number;
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

/** Retries of one Kafka call when the caller does not say (the collector's KAFKA_RETRIES default). */
export const DEFAULT_RETRIES = 2;

/**
 * Fewer retries are refused: @platformatic/kafka 2.12.1 turns 0 or 1 retries of an idempotent
 * producer into unbounded ones (its Producer constructor), and a send to a broker that is down then
 * never settles. With 1 the lane's send hung for as long as Kafka was down, every later publish timed
 * out behind it and close() waited for it (test/faults/collector-kafka-down.test.ts, which sets 2).
 */
export const MIN_RETRIES = 2;

/** Error codes a caller can switch on; all but KAFKA_MESSAGE_REJECTED are worth retrying later. */
export const PRODUCER_ERRORS = {
  overloaded: 'KAFKA_PRODUCER_OVERLOADED',
  timeout: 'KAFKA_PUBLISH_TIMEOUT',
  unavailable: 'KAFKA_UNAVAILABLE',
  rejected: 'KAFKA_MESSAGE_REJECTED',
  closed: 'KAFKA_PRODUCER_CLOSED',
} as const;

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
  readonly producer: Producer;
  queue: Slice[] = [];
  sending: Promise<void> | undefined;
  /** enqueuedAt of the oldest publish in the send in flight. */
  inFlightSince: number | undefined;

  constructor(producer: Producer) {
    this.producer = producer;
  }
}

/**
 * Kafka errors that describe the request rather than the cluster: retrying the same bytes fails the
 * same way. Classified by the library's error id for Kafka's numeric error code, never by message
 * text.
 */
const NON_RETRIABLE_TYPES = [
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'INVALID_RECORD',
  'CORRUPT_MESSAGE',
  'INVALID_REQUIRED_ACKS',
  'TOPIC_AUTHORIZATION_FAILED',
  'CLUSTER_AUTHORIZATION_FAILED',
  'UNSUPPORTED_COMPRESSION_TYPE',
] as const;

export function classifyKafkaError(err: unknown): PipelineError {
  if (err instanceof PipelineError) return err;
  // findErrorBy searches the library's nested errors (a send's per-broker and per-retry errors).
  const type = NON_RETRIABLE_TYPES.find((t) => findErrorBy(err as Error, 'apiId', t) !== null);
  if (type !== undefined) {
    return new PipelineError(PRODUCER_ERRORS.rejected, `Kafka rejected the messages (${type})`, {
      cause: err,
    });
  }
  return new PipelineError(PRODUCER_ERRORS.unavailable, 'Kafka did not acknowledge the messages', {
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
  /** kafkajs, for the admin calls only (topic creation, the readiness probe). */
  private readonly kafka: Kafka;
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
    if (o.retries !== undefined && o.retries < MIN_RETRIES) {
      throw new RangeError(`retries must be at least ${MIN_RETRIES} (got ${o.retries})`);
    }
    this.o = o;
    this.log = o.logger.child({ component: 'kafka-producer' });
    this.kafka = createKafka({
      brokers: o.brokers,
      clientId: o.clientId,
      logger: o.logger,
      retries: o.retries ?? DEFAULT_RETRIES,
    });
  }

  /**
   * A lane's producer connects on its first send and lives as long as the lane. A failed send needs
   * no new producer here: the library itself drops the idempotent producer id and its sequence
   * numbers when a send fails (2.12.1, dist/clients/producer/producer.js, #performSend), so the next
   * send starts under a new producer id, as the Java client bumps its epoch. That matters because the
   * failed batch may have been appended (acks=all timed out waiting for replicas that were down): a
   * next batch reusing its numbers would be refused for good, or taken for its retry and acknowledged
   * unwritten (what kafkajs did, docs/KAFKA.md "What the first run found"). Two of three brokers
   * down and back in test/faults/kafka-leader-kill.test.ts is the case that caught it then.
   */
  private newProducer(): Producer {
    return new Producer({
      clientId: this.o.clientId,
      bootstrapBrokers: [...this.o.brokers],
      idempotent: this.o.idempotent,
      retries: this.o.retries ?? DEFAULT_RETRIES,
    });
  }

  /**
   * Connects and creates the topic if it is missing, then reads its partitions and makes one
   * producer per lane. Throws when Kafka cannot be reached.
   */
  async start(): Promise<void> {
    const admin = this.kafka.admin();
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
      throw new PipelineError(PRODUCER_ERRORS.unavailable, `cannot prepare topic ${this.o.topic}`, {
        retriable: true,
        cause,
      });
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    const n = Math.max(1, Math.min(this.o.lanes ?? DEFAULT_LANES, this.partitionMetadata.length));
    this.lanes = Array.from({ length: n }, () => new Lane(this.newProducer()));
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

  /** True once started while the last send succeeded (a failed send flips it until a send or check() succeeds). */
  healthy(): boolean {
    return this.lanes.length > 0 && this.lastSendOk && !this.closed;
  }

  /**
   * Resolves when Kafka acknowledged (acks=all) every message; rejects with a retriable
   * PipelineError when the queue is full, Kafka is unreachable or the ack did not come in time.
   */
  publish(messages: readonly OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return Promise.resolve();
    if (this.closed) {
      return Promise.reject(
        new PipelineError(PRODUCER_ERRORS.closed, 'producer is shutting down', { retriable: true }),
      );
    }
    if (this.lanes.length === 0) {
      return Promise.reject(
        new PipelineError(PRODUCER_ERRORS.unavailable, 'producer not started', { retriable: true }),
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
          PRODUCER_ERRORS.overloaded,
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
              PRODUCER_ERRORS.timeout,
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
    await Promise.all(this.lanes.map((l) => l.producer.close()));
  }

  /**
   * Readiness probe: the producer is healthy (started, last send ok) and the cluster answers a
   * metadata request for the topic now. A failed send leaves the producer unhealthy until a send
   * or this probe succeeds, so a collector taken out of rotation comes back without traffic.
   * Results are cached for a second so probe storms cost one request.
   */
  async check(timeoutMs: number): Promise<boolean> {
    if (this.closed) return false;
    const now = Date.now();
    if (this.probe !== undefined && now - this.probe.at < 1_000) return this.probe.result;
    const admin = this.kafka.admin();
    let timer: NodeJS.Timeout | undefined;
    let result = false;
    try {
      await Promise.race([
        (async () => {
          await admin.connect();
          await admin.fetchTopicMetadata({ topics: [this.o.topic] });
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
      await lane.producer.send({
        acks: ProduceAcks.ALL,
        ...(this.o.compression === 'gzip' ? { compression: 'gzip' as const } : {}),
        messages: batch.flatMap((s) =>
          s.messages.map((r) => ({
            topic: this.o.topic,
            key: Buffer.from(r.message.key),
            value: r.message.value,
            partition: r.partition,
            // A Map: 2.12.1's default serialisers fail on a Record of headers.
            headers: new Map(
              Object.entries(r.message.headers).map(([k, v]) => [Buffer.from(k), Buffer.from(v)]),
            ),
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
