/**
 * Requests per client address in fixed windows, checked in onRequest before anything of the body is
 * read. @fastify/rate-limit runs at most one of its limiters per request (a per-registration
 * "already ran" flag), and the per-write-key limit needs the parsed body (beacons carry the key
 * there), so this one is separate. Memory: one entry per address seen in the current window.
 */
export class AddressLimit {
  private counts = new Map<string, number>();
  private windowStart = Number.NEGATIVE_INFINITY;
  private readonly max: number;
  private readonly windowMs: number;
  private readonly now: () => number;

  constructor(o: { max: number; windowMs: number; now?: () => number }) {
    this.max = o.max;
    this.windowMs = o.windowMs;
    this.now = o.now ?? Date.now;
  }

  /** Counts a request from `address`: 0 when within budget, else ms until the window ends. */
  take(address: string): number {
    const t = this.now();
    if (t - this.windowStart >= this.windowMs) {
      this.counts = new Map();
      this.windowStart = t;
    }
    const n = (this.counts.get(address) ?? 0) + 1;
    this.counts.set(address, n);
    return n > this.max ? this.windowStart + this.windowMs - t : 0;
  }
}
