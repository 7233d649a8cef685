/**
 * Per owned partition: the lag (high watermark - the group's committed offset) and how long the
 * committed offset has not moved while there was something to commit. Fed from two sides: the
 * commit path (after each commit) and a timer that reads both offsets from Kafka (main.ts), so the
 * numbers stay true when nothing commits at all, which is exactly when they matter: a partition
 * whose handler is wedged commits nothing, and lag computed only after commits would read 0.
 *
 * Stalled time counts from the later of the last advance of the committed offset and the last
 * moment the partition was seen caught up (lag 0): a partition idle for an hour that gets a message
 * is not an hour stalled. The timer's period bounds how late an observation is.
 */
export interface PartitionState {
  readonly partition: number;
  readonly lag: number;
  readonly stalledSeconds: number;
}

interface Tracked {
  high: bigint;
  committed: bigint | undefined;
  /** When the committed offset last advanced or the partition was last seen with lag 0. */
  since: number;
}

export class PartitionProgress {
  private readonly now: () => number;
  private readonly owned = new Map<number, Tracked>();

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  /** The partitions this member owns now; history of earlier ones is dropped. */
  assign(partitions: readonly number[]): void {
    this.owned.clear();
    const t = this.now();
    for (const p of partitions) this.owned.set(p, { high: 0n, committed: undefined, since: t });
  }

  /**
   * What Kafka says (or what was just committed): offsets only move forward here, so a read that
   * raced a newer commit cannot move them back. Partitions not owned are ignored.
   */
  observe(partition: number, high: bigint, committed: bigint): void {
    const p = this.owned.get(partition);
    if (p === undefined) return;
    const t = this.now();
    if (high > p.high) p.high = high;
    if (p.committed === undefined || committed > p.committed) {
      p.committed = committed;
      p.since = t;
    }
    if (p.high <= p.committed) p.since = t;
  }

  /** Every owned partition that has been observed, in partition order. */
  states(): PartitionState[] {
    const t = this.now();
    const out: PartitionState[] = [];
    for (const [partition, p] of [...this.owned].sort(([a], [b]) => a - b)) {
      if (p.committed === undefined) continue;
      const lag = p.high > p.committed ? Number(p.high - p.committed) : 0;
      out.push({ partition, lag, stalledSeconds: lag > 0 ? (t - p.since) / 1000 : 0 });
    }
    return out;
  }

  /** Partitions stalled (lag > 0, committed offset not moving) for longer than `thresholdMs`. */
  stuck(thresholdMs: number): PartitionState[] {
    return this.states().filter((s) => s.stalledSeconds * 1000 > thresholdMs);
  }
}
