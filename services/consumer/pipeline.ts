/**
 * Kafka partition batches -> decoded records -> one shared batch -> ClickHouse, and the offsets
 * back to Kafka only after that.
 *
 * OFFSET INVARIANT: a partition's offset N+1 is committed only after every message up to N is
 * durable downstream: written to ClickHouse (its batch acknowledged) or written to the dead-letter
 * topic. A handler commits its own partition batch, so commits are in ascending order per
 * partition (kafkajs never runs two batches of one partition at once), and the commit ledger in
 * services/lib/kafka-consumer.ts drops commits for partitions this member no longer owns.
 * Kill -9 at any point therefore re-delivers at most the uncommitted tail; the data model's dedup
 * (event_id) absorbs the re-delivered rows.
 *
 * Batching: rows from all partitions share one open batch (Batcher), flushed at BATCH_MAX_ROWS,
 * BATCH_MAX_BYTES or FLUSH_INTERVAL_MS after its oldest row entered Kafka; sooner when the fetch left messages
 * behind in Kafka (catching up: waiting cannot grow the batch, because a handler holds its fetch
 * until its rows are written), FLUSH_IDLE_MS after it when the fetch reached the end of its
 * partition (caught up: the same holds, and a full interval's wait was most of the freshness
 * p99), and at shutdown. Batches that fill meanwhile are closed and queued,
 * so every insert respects the caps.
 *
 * Two stages, so the consumer's CPU work overlaps ClickHouse's: while batch n is being inserted,
 * batch n+1 is prepared (profile look-ups, enrichment, row building). Preparing is strictly in
 * batch order (the identity/profile context sees identifies before the activities after them) and
 * at most one prepared batch waits for the writer; writes are strictly in batch order too. A fetch
 * can hold several batches (FETCH_MAX_BYTES), which is what gives the preparer work while the
 * writer waits on ClickHouse.
 *
 * Messages are decoded when their batch is prepared, not when fetched: a decoded record is about
 * three times its Kafka message in memory, and a fetch of gzip-compressed batches (the collector's
 * default) decompresses to several times FETCH_MAX_BYTES, i.e. many batches, so decoding all of it
 * at once made the decoded records most of the consumer's peak heap (docs/SCALING.md "Memory").
 * Poison messages are therefore found and dead-lettered when their batch is prepared, before it is
 * written, hence still before any offset after them is committed.
 */

import type { AvroCodec } from '../lib/avro.ts';
import { classifyClickHouseError } from '../lib/clickhouse.ts';
import type { BatchScope, ConsumedMessage, PartitionBatch } from '../lib/kafka-consumer.ts';
import type { Logger } from '../lib/logger.ts';
import { type Batch, Batcher, type BatchLimits } from './batcher.ts';
import { type Decoded, decodeMessage } from './decode.ts';
import type { DeadLetter, DeadLetterQueue } from './dlq.ts';
import {
  type ActivityRecord,
  type IdentifyRecord,
  type IngestActivityRow,
  type IngestIdentifyRow,
  toIngestActivityRow,
  toIngestIdentifyRow,
} from './ingest-row.ts';
import type { ConsumerMetrics } from './metrics.ts';
import type { RedeliveryCheck, UserContext } from './profiles.ts';
import type { PartitionProgress } from './progress.ts';
import type { Retry } from './retry.ts';
import { INGEST_TABLES } from './schema.ts';
import type { Sink, SinkItem } from './sink.ts';

/**
 * How far ahead of this consumer's clock the collector's may run: an event received (collector
 * clock) up to this long after an assignment (consumer clock) may still have been in Kafka before it.
 */
export const CLOCK_MARGIN_MS = 60_000;

/** possiblyWritten's answer once every partition is past its re-deliveries (most batches). */
const NOTHING_WRITTEN: ReadonlyMap<ActivityRecord, number> = new Map();

interface Source {
  readonly topic: string;
  readonly partition: number;
  readonly message: ConsumedMessage;
}

type Item = Decoded & { readonly source: Source };

export interface PipelineOptions {
  readonly codec: AvroCodec;
  readonly sink: Sink;
  readonly dlq: DeadLetterQueue;
  readonly context: UserContext;
  readonly limits: BatchLimits;
  readonly logger: Logger;
  readonly metrics: ConsumerMetrics;
  /** Lag and stalled time per partition; told about every commit. */
  readonly progress: PartitionProgress;
  /** How often a handler waiting for its batch heart-beats (below the session timeout). */
  readonly heartbeatEveryMs: number;
  /** Retries a failed cache-miss look-up (ClickHouse down) until it succeeds or shutdown. */
  readonly retryLookup: Retry;
  /** Retries a failed dead-letter send (Kafka down) until it succeeds or shutdown. */
  readonly retryDeadLetters: Retry;
  readonly now?: () => number;
}

type Waiter = { readonly seq: number; readonly resolve: () => void; readonly reject: (e: Error) => void };

/** A batch with its rows built, waiting for (or in) its insert. */
interface Prepared {
  readonly batch: Batch<Source>;
  readonly identifyRows: SinkItem<Source>[];
  readonly activityRows: SinkItem<Source>[];
  /** received_at of each activity and identify row (the delay metric), not their whole records. */
  readonly receivedAt: number[];
}

export class Pipeline {
  private readonly o: PipelineOptions;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly batcher: Batcher<Source>;
  /** Highest batch number acknowledged (batches are written strictly in order). */
  private writtenSeq = 0;
  private waiters: Waiter[] = [];
  /** Batches closed because they were full, waiting to be prepared, in seq order. */
  private closed: { batch: Batch<Source>; reason: string }[] = [];
  /** The batch being prepared, the prepared one waiting for the writer, the one being written. */
  private preparing: { batch: Batch<Source>; done: Promise<void> } | undefined;
  private prepared: Prepared | undefined;
  private writing: { batch: Batch<Source>; done: Promise<void> } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private kickScheduled = false;
  private forceNext: 'lag' | 'shutdown' | undefined;
  private draining = false;
  private failed: Error | undefined;
  /**
   * Partitions whose messages may have been written by an earlier owner (or by this member before a
   * rebalance) without a commit: partition -> received_at bound (assignment + CLOCK_MARGIN_MS).
   */
  private readonly mayBeWritten = new Map<number, number>();
  /** Assignments so far: a prepare that began under an earlier one leaves mayBeWritten alone. */
  private assignment = 0;

  constructor(o: PipelineOptions) {
    this.o = o;
    this.log = o.logger.child({ component: 'pipeline' });
    this.now = o.now ?? Date.now;
    this.batcher = new Batcher<Source>(o.limits, this.now);
  }

  /** The BatchHandler given to the group consumer. */
  readonly handle = async (batch: PartitionBatch, scope: BatchScope): Promise<void> => {
    // Commit points: for each batch this partition's messages went into, the offset after the last
    // of them. Poison messages among them are dead-lettered when that batch is prepared.
    const marks: { seq: number; next: bigint }[] = [];
    for (const message of batch.messages) {
      const source = { topic: batch.topic, partition: batch.partition, message };
      const seq = this.batcher.add(source, message.value?.length ?? 0, Number(message.timestamp));
      const next = BigInt(message.offset) + 1n;
      const tail = marks[marks.length - 1];
      if (tail?.seq === seq) tail.next = next;
      else marks.push({ seq, next });
      // A full batch is closed at once, so inserts respect the caps; closed batches are written one
      // at a time, in order (memory stays bounded by the fetch size).
      const full = this.batcher.due();
      if (full === 'rows' || full === 'bytes') {
        const b = this.batcher.take();
        if (b) this.closed.push({ batch: b, reason: full });
        this.maybeFlush();
      }
    }
    this.updateBuffered();
    const last = batch.messages[batch.messages.length - 1];
    if (last === undefined) return;
    const end = BigInt(last.offset) + 1n;
    if (BigInt(batch.highWatermark) > end) this.kick('lag');
    else {
      // Caught up: no fetch comes while this handler holds its rows, so only the idle age is waited.
      this.batcher.caughtUp();
      this.kick(undefined);
    }

    // In ascending order, each commit only after the batch holding those messages was written.
    for (const mark of marks) {
      await this.waitWritten(mark.seq, scope);
      if (await scope.commit(mark.next.toString())) {
        this.o.progress.observe(batch.partition, BigInt(batch.highWatermark), mark.next);
      }
    }
  };

  /**
   * A new assignment (the first at start too). What the partitions held until now may have been
   * written, not committed, and comes again: its events are checked for re-delivery (profiles.ts,
   * "Re-delivery keeps the actor") until the partition is past what an earlier owner could have
   * written: a batch in which none of its checked events is in the facts (an owner writes a
   * partition's messages in offset order, so what follows is new), or an event received after the
   * assignment. A member that has caught up therefore checks nothing, and a backlog is checked for
   * a batch or two, not to its end.
   */
  assigned(partitions: readonly number[]): void {
    this.assignment += 1;
    this.mayBeWritten.clear();
    const until = this.now() + CLOCK_MARGIN_MS;
    for (const p of partitions) this.mayBeWritten.set(p, until);
  }

  /** Shutdown: flush what is open now and every row that still arrives, without waiting. */
  drain(): void {
    this.draining = true;
    this.kick('shutdown');
  }

  /** Resolves when no flush is running and nothing is buffered. */
  async idle(): Promise<void> {
    while (this.busy() || this.prepared || this.closed.length > 0 || this.batcher.rows > 0) {
      this.kick(this.draining ? 'shutdown' : undefined);
      await (this.busy() ?? new Promise((r) => setTimeout(r, 10)));
    }
  }

  /** Buffered rows and bytes: open, closed, preparing, prepared and writing batches. */
  buffered(): { rows: number; bytes: number } {
    const batches = [
      ...this.closed.map((c) => c.batch),
      this.preparing?.batch,
      this.prepared?.batch,
      this.writing?.batch,
    ];
    let rows = this.batcher.rows;
    let bytes = this.batcher.bufferedBytes;
    for (const b of batches) {
      rows += b?.items.length ?? 0;
      bytes += b?.bytes ?? 0;
    }
    return { rows, bytes };
  }

  /** A stage's promise while one runs (the writer's first). */
  private busy(): Promise<void> | undefined {
    return this.writing?.done ?? this.preparing?.done;
  }

  /**
   * Waits until batch `seq` is written, heart-beating so a slow or down ClickHouse does not cost the
   * group membership. A heartbeat that throws means a rebalance: the handler gives up WITHOUT
   * committing (its rows may still be written; re-delivery to the new owner is absorbed by dedup).
   */
  private async waitWritten(seq: number, scope: BatchScope): Promise<void> {
    if (this.writtenSeq >= seq) return;
    if (this.failed) throw this.failed;
    const written = new Promise<void>((resolve, reject) => {
      this.waiters.push({ seq, resolve, reject });
    });
    await this.heartbeatUntil(written, scope);
  }

  /** Awaits `work`, heart-beating meanwhile; a heartbeat that throws (rebalance) ends the wait. */
  private async heartbeatUntil(work: Promise<void>, scope: BatchScope): Promise<void> {
    // A handler that gives up on a rebalance leaves `work` behind; its rejection at shutdown must
    // not count as unhandled.
    work.catch(() => {});
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const tick = new Promise<'tick'>((r) => {
        timer = setTimeout(() => r('tick'), this.o.heartbeatEveryMs);
      });
      try {
        if ((await Promise.race([work.then(() => 'done' as const), tick])) === 'done') return;
      } finally {
        clearTimeout(timer);
      }
      await scope.heartbeat();
    }
  }

  /** Resolves once the letters are in the DLQ; retried (an outage) until then or shutdown. */
  private deadLetter(letters: readonly DeadLetter[]): Promise<void> {
    if (letters.length === 0) return Promise.resolve();
    return this.o.retryDeadLetters('dead-letter send', () => this.o.dlq.send(letters));
  }

  /**
   * Fills the identity/profile caches for the batch. An outage is retried (fetching paused); a
   * look-up ClickHouse refuses for good (any other code, e.g. a query it cannot parse) would fail
   * the same way forever, so the batch is written without the context it would have found: the
   * profile is best-effort enrichment, and a wedged partition loses far more than attributes.
   */
  private async prefetch(
    activities: ActivityRecord[],
    identifies: IdentifyRecord[],
    mayBeWritten: Iterable<ActivityRecord>,
  ): Promise<RedeliveryCheck | undefined> {
    const refused = (err: unknown): boolean => !classifyClickHouseError(err).retriable;
    try {
      const check = await this.o.retryLookup(
        'profile look-up',
        () => this.o.context.prefetch(activities, identifies, mayBeWritten),
        refused,
      );
      this.o.metrics.actorsKept.inc(check.kept);
      return check;
    } catch (err) {
      // Only a refused look-up is absorbed; anything else rejected because shutdown aborted.
      if (!refused(err)) throw err;
      const code = String(classifyClickHouseError(err).code);
      this.o.metrics.lookupsSkipped.inc({ code });
      this.log.error({ err, code }, 'profile look-up refused by ClickHouse; batch written without it');
      return undefined;
    }
  }

  /** The batch's activities an earlier owner may have written, by partition (see assigned()). */
  private possiblyWritten(items: readonly Item[]): ReadonlyMap<ActivityRecord, number> {
    if (this.mayBeWritten.size === 0) return NOTHING_WRITTEN;
    const out = new Map<ActivityRecord, number>();
    for (const i of items) {
      if (i.kind !== 'activity') continue;
      const { partition } = i.source;
      const until = this.mayBeWritten.get(partition);
      if (until === undefined) continue;
      // Received after the assignment: in Kafka only after it, so neither it nor what follows it
      // in the partition was written before.
      if (i.record.received_at >= until) this.mayBeWritten.delete(partition);
      else out.set(i.record, partition);
    }
    return out;
  }

  /** Partitions whose checked events this batch were none in the facts are past the re-deliveries. */
  private checked(
    check: RedeliveryCheck | undefined,
    partitionOf: ReadonlyMap<ActivityRecord, number>,
  ): void {
    if (check === undefined) return;
    const probed = new Set<number>();
    const found = new Set<number>();
    for (const r of check.probed) {
      const p = partitionOf.get(r);
      if (p === undefined) continue;
      probed.add(p);
      if (check.found.has(r.event_id)) found.add(p);
    }
    for (const p of probed) if (!found.has(p)) this.mayBeWritten.delete(p);
  }

  private kick(force: 'lag' | 'shutdown' | undefined): void {
    if (force === 'shutdown' || (force === 'lag' && this.forceNext !== 'shutdown')) this.forceNext = force;
    // Deferred so every partition handler of the same fetch adds its rows before a forced flush.
    if (this.kickScheduled) return;
    this.kickScheduled = true;
    setImmediate(() => {
      this.kickScheduled = false;
      this.maybeFlush();
    });
  }

  private maybeFlush(): void {
    if (this.failed) return;
    // Writer: the prepared batch, as soon as the previous write is acknowledged.
    if (this.writing === undefined && this.prepared !== undefined) {
      const p = this.prepared;
      this.prepared = undefined;
      this.writing = {
        batch: p.batch,
        done: this.write(p)
          .then(() => {
            this.writtenSeq = p.batch.seq;
            this.release();
          }, this.fail)
          .finally(() => {
            this.writing = undefined;
            this.updateBuffered();
            this.maybeFlush();
          }),
      };
    }
    // Preparer: the next batch, one ahead of the writer at most.
    if (this.preparing !== undefined || this.prepared !== undefined) return;
    let next = this.closed.shift();
    if (next === undefined) {
      const reason = this.batcher.due() ?? (this.draining ? 'shutdown' : this.forceNext);
      this.forceNext = undefined;
      const batch = reason === undefined ? undefined : this.batcher.take();
      if (reason === undefined || batch === undefined) {
        this.armTimer();
        return;
      }
      next = { batch, reason };
    }
    clearTimeout(this.timer);
    this.timer = undefined;
    const { batch, reason } = next;
    this.o.metrics.flushes.inc({ reason });
    this.preparing = {
      batch,
      done: this.prepare(batch)
        .then((p) => {
          this.prepared = p;
        }, this.fail)
        .finally(() => {
          this.preparing = undefined;
          this.maybeFlush();
        }),
    };
  }

  /**
   * Only shutdown gets here (an aborted insert, look-up or dead-letter retry): waiters fail, nothing
   * more is prepared, written or committed.
   */
  private readonly fail = (err: unknown): void => {
    this.failed ??= err instanceof Error ? err : new Error(String(err));
    for (const w of this.waiters) w.reject(this.failed);
    this.waiters = [];
  };

  private armTimer(): void {
    const ms = this.batcher.msUntilDue();
    // Re-armed on every call: a caught-up batch becomes due sooner than the timer set before.
    clearTimeout(this.timer);
    this.timer = undefined;
    if (ms === undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.maybeFlush();
    }, ms);
  }

  private release(): void {
    const still: Waiter[] = [];
    for (const w of this.waiters) {
      if (w.seq <= this.writtenSeq) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }

  private updateBuffered(): void {
    const b = this.buffered();
    this.o.metrics.bufferedRows.set(b.rows);
    this.o.metrics.bufferedBytes.set(b.bytes);
  }

  /**
   * Decodes the batch's messages, dead-letters the poison ones (retried while Kafka refuses: the
   * batch, hence every commit after them, waits), looks up the context and builds the rows, in
   * stream order.
   */
  private async prepare(batch: Batch<Source>): Promise<Prepared> {
    const { context } = this.o;
    const poison: DeadLetter[] = [];
    const items: Item[] = [];
    for (const source of batch.items) {
      const d = decodeMessage(this.o.codec, source.message);
      if (d.kind === 'poison') poison.push({ ...source, reason: d.reason, code: d.code, error: d.message });
      else items.push({ ...d, source });
    }
    await this.deadLetter(poison);
    const activities = items.flatMap((i) => (i.kind === 'activity' ? [i.record] : []));
    const identifies = items.flatMap((i) => (i.kind === 'identify' ? [i.record] : []));
    const assignment = this.assignment;
    const partitionOf = this.possiblyWritten(items);
    const check = await this.prefetch(activities, identifies, partitionOf.keys());
    if (assignment === this.assignment) this.checked(check, partitionOf);

    const identifyRows: SinkItem<Source>[] = [];
    const activityRows: SinkItem<Source>[] = [];
    const receivedAt = items.map((i) => i.record.received_at);
    // In stream order, so an identify updates the context before the activity that follows it.
    for (const item of items) {
      if (item.kind === 'identify') {
        // The merged profile, not the identify's traits alone: its dim_users row must be complete.
        const row: IngestIdentifyRow = toIngestIdentifyRow(context.observeIdentify(item.record));
        identifyRows.push({ row: row as unknown as Record<string, unknown>, source: item.source });
      } else {
        const e = context.enrich(item.record);
        const row: IngestActivityRow = toIngestActivityRow(e.record, e);
        activityRows.push({ row: row as unknown as Record<string, unknown>, source: item.source });
      }
    }
    return { batch, identifyRows, activityRows, receivedAt };
  }

  /** Writes one prepared batch: profiles first (so their look-ups see them), then activity; rejects -> DLQ. */
  private async write({ batch, identifyRows, activityRows, receivedAt }: Prepared): Promise<void> {
    const { metrics } = this.o;
    const rejected = [
      ...(await this.o.sink.write(INGEST_TABLES.identify, identifyRows)),
      ...(await this.o.sink.write(INGEST_TABLES.activity, activityRows)),
    ];
    await this.deadLetter(
      rejected.map((r) => ({
        ...r.source,
        reason: 'rejected_by_clickhouse',
        code: `CLICKHOUSE_${r.code}`,
        error: r.message,
      })),
    );

    const now = this.now();
    metrics.markInserted();
    metrics.batchRows.observe(receivedAt.length);
    metrics.batchBytes.observe(batch.bytes);
    metrics.batchSeconds.observe((now - batch.openedAt) / 1000);
    for (const at of receivedAt) metrics.eventDelaySeconds.observe(Math.max(0, now - at) / 1000);
    this.log.debug(
      { seq: batch.seq, rows: batch.items.length, bytes: batch.bytes, rejected: rejected.length },
      'batch written',
    );
  }
}
