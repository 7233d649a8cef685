/**
 * Admission control on the publish backlog, with CoDel's rule for telling a standing queue from a
 * burst: intake is refused only after acknowledged publishes have waited longer than the target
 * for a whole interval (each acknowledgement that came in under the target starts the count
 * again), and then for as long as the backlog stays over the target. A momentary broker or
 * machine stall (one slow send, a GC pause) delays the requests it holds but sheds nothing; a
 * collector past its maximum, where every publish waits, sheds within about one interval and keeps
 * what it admits near the target. Backstop: when nothing is acknowledged at all (a hung broker),
 * the oldest unacknowledged publish's age alone decides, once it exceeds target + interval.
 *
 * Why: with the age of the oldest publish alone (the previous rule), the 30-minute soak at half load
 * shed a few dozen requests on a single sub-second stall (bench/SOAK.md, docs/RELIABILITY.md).
 * Pure; the clock is injected.
 */
export interface AdmissionOptions {
  /** Publish wait (publish() to acks) above which intake is at risk of being shed. */
  readonly targetMs: number;
  /** How long waits must stay above the target before intake is shed. */
  readonly intervalMs: number;
  readonly now?: () => number;
}

export class PublishAdmission {
  private readonly o: AdmissionOptions;
  private readonly now: () => number;
  /** Since when every acknowledged publish has waited longer than the target; undefined: not so. */
  private slowSince: number | undefined;

  constructor(o: AdmissionOptions) {
    this.o = o;
    this.now = o.now ?? Date.now;
  }

  /** A publish was acknowledged after waiting `waitedMs`. */
  observe(waitedMs: number): void {
    if (waitedMs <= this.o.targetMs) this.slowSince = undefined;
    else this.slowSince ??= this.now();
  }

  /** Whether to refuse a request now, given how long the oldest unacknowledged publish has waited. */
  shed(backlogMs: number): boolean {
    if (backlogMs <= this.o.targetMs) return false;
    if (backlogMs > this.o.targetMs + this.o.intervalMs) return true;
    return this.slowSince !== undefined && this.now() - this.slowSince >= this.o.intervalMs;
  }
}
