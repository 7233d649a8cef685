/**
 * Accumulates rows into one open batch and says when it is due: at `maxRows` rows, at `maxBytes`
 * bytes, or `maxAgeMs` after its oldest row arrived, whichever comes first. A row's arrival is when
 * it entered Kafka, not when it joined the batch: a row that already waited in Kafka (fetching
 * pauses while a batch is written) must not wait a full interval again. Pure: the clock is injected, so
 * the rules are unit-tested without sleeping; timers and I/O live in the pipeline.
 *
 * Batches are numbered in the order they are taken (1, 2, ...). A row's batch number is the
 * ticket its Kafka offset waits on: offsets are committed only after that batch was written.
 */
export interface BatchLimits {
  readonly maxRows: number;
  readonly maxBytes: number;
  readonly maxAgeMs: number;
}

export type FlushReason = 'rows' | 'bytes' | 'time';

export interface Batch<T> {
  readonly seq: number;
  readonly items: readonly T[];
  readonly bytes: number;
  /** Arrival of the oldest row (clock reading). */
  readonly openedAt: number;
}

export class Batcher<T> {
  private items: T[] = [];
  private bytes = 0;
  private openedAt = 0;
  private seq = 1;
  private readonly limits: BatchLimits;
  private readonly now: () => number;

  constructor(limits: BatchLimits, now: () => number) {
    if (limits.maxRows < 1 || limits.maxBytes < 1 || limits.maxAgeMs < 0) {
      throw new RangeError(`invalid batch limits ${JSON.stringify(limits)}`);
    }
    this.limits = limits;
    this.now = now;
  }

  /**
   * Adds a row of `bytes` bytes that arrived at `arrivedAt` (clamped to the last `maxAgeMs`, so a
   * skewed or old timestamp at worst flushes at once); returns the number of the batch it joined.
   */
  add(item: T, bytes: number, arrivedAt: number = this.now()): number {
    const now = this.now();
    const at = Math.min(now, Math.max(arrivedAt, now - this.limits.maxAgeMs));
    if (this.items.length === 0 || at < this.openedAt) this.openedAt = at;
    this.items.push(item);
    this.bytes += bytes;
    return this.seq;
  }

  get rows(): number {
    return this.items.length;
  }

  get bufferedBytes(): number {
    return this.bytes;
  }

  /** Why the open batch should be flushed now; undefined when it should keep filling. */
  due(): FlushReason | undefined {
    if (this.items.length === 0) return undefined;
    if (this.items.length >= this.limits.maxRows) return 'rows';
    if (this.bytes >= this.limits.maxBytes) return 'bytes';
    if (this.now() - this.openedAt >= this.limits.maxAgeMs) return 'time';
    return undefined;
  }

  /** Milliseconds until the open batch is due by age; undefined when it is empty. */
  msUntilDue(): number | undefined {
    if (this.items.length === 0) return undefined;
    return Math.max(0, this.openedAt + this.limits.maxAgeMs - this.now());
  }

  /** Closes the open batch (even if not due) and returns it; undefined when empty. */
  take(): Batch<T> | undefined {
    if (this.items.length === 0) return undefined;
    const batch: Batch<T> = { seq: this.seq, items: this.items, bytes: this.bytes, openedAt: this.openedAt };
    this.seq += 1;
    this.items = [];
    this.bytes = 0;
    return batch;
  }
}
