/**
 * Requests per key in fixed windows, all keys' windows together: the collector's two rate limits,
 * per client address (in onRequest, before anything of the body is read) and per write key (once
 * the request is authenticated: a beacon carries its key in the body). Synchronous, with no
 * per-request state beyond a count: @fastify/rate-limit, used before for the per-key limit, cost
 * every request an async hook with two awaits, a cache look-up and three response headers.
 * Memory: one entry per key seen in the current window (addresses; write keys are few).
 */
export class WindowLimit {
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

  /** Counts a request for `key`: 0 when within budget, else ms until the window ends. */
  take(key: string): number {
    const t = this.now();
    if (t - this.windowStart >= this.windowMs) {
      this.counts = new Map();
      this.windowStart = t;
    }
    const n = (this.counts.get(key) ?? 0) + 1;
    this.counts.set(key, n);
    return n > this.max ? this.windowStart + this.windowMs - t : 0;
  }
}
