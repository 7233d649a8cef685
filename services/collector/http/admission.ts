/**
 * Admission control on the publish backlog (how long the oldest unacknowledged publish has
 * waited), shedding a standing backlog but not a burst: intake is refused once the backlog has
 * stayed over the target for a whole interval, as seen by the requests arriving meanwhile, or at
 * once when it exceeds target + interval (a hung broker: nothing arrives to watch it grow, or it
 * grows that fast). Once it has shed, it sheds again without a new interval whenever the backlog
 * climbs back over the target within RESUME_WITHIN_INTERVALS intervals of the last refusal (as
 * CoDel re-enters its dropping state), so a collector past its maximum keeps what it admits near
 * the target: measured at 2x the maximum (bench scenario 8), resuming within one interval only
 * let each new episode admit a full interval's burst, and accepted requests waited about
 * target + interval.
 *
 * Why not the target alone (the previous rule): the 30-minute soak at half load shed a few dozen
 * requests on a single sub-second stall (bench/SOAK.md, docs/RELIABILITY.md); a stall shorter than
 * the interval now delays the requests it holds but refuses none. Pure; the clock is injected.
 */
/** A collector that shed this recently (in intervals) is still near its maximum. */
const RESUME_WITHIN_INTERVALS = 20;

export interface AdmissionOptions {
  /** Backlog (ms) above which intake is at risk of being shed. */
  readonly targetMs: number;
  /** How long the backlog must stay above the target before intake is shed. */
  readonly intervalMs: number;
  readonly now?: () => number;
}

export class PublishAdmission {
  private readonly o: AdmissionOptions;
  private readonly now: () => number;
  /** Since when arriving requests have seen the backlog over the target; undefined: not so. */
  private overSince: number | undefined;
  private lastShedAt = Number.NEGATIVE_INFINITY;

  constructor(o: AdmissionOptions) {
    this.o = o;
    this.now = o.now ?? Date.now;
  }

  /** Whether to refuse a request now, given how long the oldest unacknowledged publish has waited. */
  shed(backlogMs: number): boolean {
    const now = this.now();
    if (backlogMs <= this.o.targetMs) {
      this.overSince = undefined;
      return false;
    }
    this.overSince ??= now;
    const refuse =
      backlogMs > this.o.targetMs + this.o.intervalMs ||
      now - this.overSince >= this.o.intervalMs ||
      now - this.lastShedAt < this.o.intervalMs * RESUME_WITHIN_INTERVALS;
    if (refuse) this.lastShedAt = now;
    return refuse;
  }
}
