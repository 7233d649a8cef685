/**
 * Accumulates rows into one open batch and says when it is due: at `maxRows` rows, at `maxBytes`
 * bytes, or `maxAgeMs` after its oldest row arrived, whichever comes first; once the source said it
 * is caught up (nothing more pending), already `idleAgeMs` after the oldest row: waiting longer
 * could only delay rows, not add any. A row's arrival is when
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
  /** Age at which a caught-up batch is due (at most `maxAgeMs`); `maxAgeMs` when absent. */
  readonly idleAgeMs?: number;
}

export type FlushReason = 'rows' | 'bytes' | 'time' | 'idle';

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
  private idle = false;
  private readonly limits: BatchLimits;
  private readonly idleAgeMs: number;
  private readonly now: () => number;

  constructor(limits: BatchLimits, now: () => number) {
    if (limits.maxRows < 1 || limits.maxBytes < 1 || limits.maxAgeMs < 0 || (limits.idleAgeMs ?? 0) < 0) {
      throw new RangeError(`invalid batch limits ${JSON.stringify(limits)}`);
    }
    this.limits = limits;
    this.idleAgeMs = Math.min(limits.idleAgeMs ?? limits.maxAgeMs, limits.maxAgeMs);
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

  /**
   * The source had nothing more pending after the rows added so far: the open batch is due at the
   * idle age. Holds until the batch is taken (rows added later join a batch that is already due).
   */
  caughtUp(): void {
    if (this.items.length > 0) this.idle = true;
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
    const age = this.now() - this.openedAt;
    if (age >= this.limits.maxAgeMs) return 'time';
    if (this.idle && age >= this.idleAgeMs) return 'idle';
    return undefined;
  }

  /** Milliseconds until the open batch is due by age; undefined when it is empty. */
  msUntilDue(): number | undefined {
    if (this.items.length === 0) return undefined;
    const dueAge = this.idle ? this.idleAgeMs : this.limits.maxAgeMs;
    return Math.max(0, this.openedAt + dueAge - this.now());
  }

  /** Closes the open batch (even if not due) and returns it; undefined when empty. */
  take(): Batch<T> | undefined {
    if (this.items.length === 0) return undefined;
    const batch: Batch<T> = { seq: this.seq, items: this.items, bytes: this.bytes, openedAt: this.openedAt };
    this.seq += 1;
    this.items = [];
    this.bytes = 0;
    this.idle = false;
    return batch;
  }
}
