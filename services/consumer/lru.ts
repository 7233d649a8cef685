/**
 * A bounded least-recently-used map with an optional per-entry expiry. Memory stays at `max`
 * entries whatever the number of users; an evicted entry only costs a ClickHouse look-up later.
 */
export class Lru<K, V> {
  private readonly map = new Map<K, { value: V; expiresAt: number }>();
  private readonly max: number;
  private readonly now: () => number;

  constructor(max: number, now: () => number = Date.now) {
    if (max < 1) throw new RangeError('LRU size must be at least 1');
    this.max = max;
    this.now = now;
  }

  get(key: K): V | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    this.map.delete(key);
    if (e.expiresAt <= this.now()) return undefined;
    this.map.set(key, e);
    return e.value;
  }

  /** The value without refreshing its recency; undefined when absent or expired. */
  peek(key: K): V | undefined {
    const e = this.map.get(key);
    return e === undefined || e.expiresAt <= this.now() ? undefined : e.value;
  }

  delete(key: K): void {
    this.map.delete(key);
  }

  has(key: K): boolean {
    return this.get(key) !== undefined;
  }

  /** `ttlMs` bounds how long a value may be trusted (negative look-ups); default: until evicted. */
  set(key: K, value: V, ttlMs = Number.POSITIVE_INFINITY): void {
    this.map.delete(key);
    this.map.set(key, { value, expiresAt: this.now() + ttlMs });
    if (this.map.size > this.max) {
      const oldest = this.map.keys().next();
      if (!oldest.done) this.map.delete(oldest.value);
    }
  }

  get size(): number {
    return this.map.size;
  }
}
