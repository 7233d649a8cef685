/**
 * A bounded, approximately least-recently-used map with an optional per-entry expiry. Memory stays
 * at `max` entries whatever the number of users; an evicted entry only costs a ClickHouse look-up
 * later.
 *
 * Two generations of at most max/2 entries each (the "hashlru" scheme): new and refreshed entries
 * go into the young map; when it is full it becomes the old one and the previous old one is dropped
 * whole. A hit in the young map costs one Map.get and never reorders anything; a hit in the old map
 * moves the entry into the young one, so an entry used within the last max/2 insertions survives.
 *
 * Why not one Map in insertion order (delete + set on every hit, evict `keys().next()`): V8 leaves
 * a deleted entry as a hole until the table is rebuilt and `keys().next()` walks every hole before
 * the first live entry, so past `max` each eviction scanned all earlier evictions. With 1M new users
 * through a 200k cache that walk was most of the consumer's time (bench scenario 7 went from 0.35
 * to 0.62 of the collector's rate with this change alone, docs/RELIABILITY.md); here every
 * operation is O(1).
 *
 * With `bytes`, a generation is also full at half of `bytes.max` by `bytes.of(key, value)` (an
 * estimate the caller supplies), so entries whose size the caller does not control (traits of up
 * to an event's size) cannot make `max` entries many times the memory planned for.
 */
interface Entry<V> {
  readonly value: V;
  readonly expiresAt: number;
  readonly bytes: number;
}

export interface LruBytes<K, V> {
  readonly max: number;
  readonly of: (key: K, value: V) => number;
}

export class Lru<K, V> {
  private young = new Map<K, Entry<V>>();
  private old = new Map<K, Entry<V>>();
  private youngBytes = 0;
  private readonly generation: number;
  private readonly now: () => number;
  private readonly bytes: LruBytes<K, V> | undefined;

  constructor(max: number, now: () => number = Date.now, bytes?: LruBytes<K, V>) {
    if (max < 2) throw new RangeError('LRU size must be at least 2');
    this.generation = Math.floor(max / 2);
    this.now = now;
    this.bytes = bytes;
  }

  get(key: K): V | undefined {
    const y = this.young.get(key);
    if (y !== undefined) return y.expiresAt <= this.now() ? undefined : y.value;
    const o = this.old.get(key);
    if (o === undefined) return undefined;
    this.old.delete(key);
    if (o.expiresAt <= this.now()) return undefined;
    this.insert(key, o);
    return o.value;
  }

  /** The value without refreshing its recency; undefined when absent or expired. */
  peek(key: K): V | undefined {
    const e = this.young.get(key) ?? this.old.get(key);
    return e === undefined || e.expiresAt <= this.now() ? undefined : e.value;
  }

  delete(key: K): void {
    const y = this.young.get(key);
    if (y !== undefined) {
      this.youngBytes -= y.bytes;
      this.young.delete(key);
    }
    this.old.delete(key);
  }

  has(key: K): boolean {
    return this.get(key) !== undefined;
  }

  /** `ttlMs` bounds how long a value may be trusted (negative look-ups); default: until evicted. */
  set(key: K, value: V, ttlMs = Number.POSITIVE_INFINITY): void {
    this.old.delete(key);
    this.insert(key, { value, expiresAt: this.now() + ttlMs, bytes: this.bytes?.of(key, value) ?? 0 });
  }

  get size(): number {
    return this.young.size + this.old.size;
  }

  private insert(key: K, e: Entry<V>): void {
    const replaced = this.young.get(key);
    if (replaced !== undefined) this.youngBytes -= replaced.bytes;
    const full =
      this.young.size >= this.generation ||
      (this.bytes !== undefined && this.youngBytes + e.bytes > this.bytes.max / 2);
    // A non-empty young generation is rotated, so one entry larger than half the budget is still kept.
    if (full && replaced === undefined && this.young.size > 0) {
      this.old = this.young;
      this.young = new Map();
      this.youngBytes = 0;
    }
    this.young.set(key, e);
    this.youngBytes += e.bytes;
  }
}
