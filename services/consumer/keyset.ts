/**
 * A compact set of strings for "may this id have a profile / an identity link?", so the consumer
 * asks ClickHouse only about ids that may (profiles.ts), with up to 16 flag bits per member (which
 * profile attributes it may have). It stores a 32-bit hash per id, not the id: 6 bytes per member
 * in a sorted Uint32Array and a parallel Uint16Array (1M users: 6 MB), plus a small unsorted
 * buffer of recent additions merged in when it grows.
 *
 * Answers are one-sided: `has` is true for every id ever added and `bits` holds every bit it was
 * added with (no false negatives, so a profile is never missed), and true for a non-member with
 * probability about size / 2^32 (a false positive: one look-up that finds nothing; 0.023% at 1M
 * members, measured in keyset.test.ts); ids whose hashes collide share their bits. Members and
 * bits are never removed: profiles and links are never deleted either.
 */

/**
 * MurmurHash3's 32-bit finaliser over the UTF-16 code units, seeded: fast, and well enough
 * distributed that the false-positive rate is the ideal size / 2^32 (keyset.test.ts). It need not
 * match any ClickHouse function: ids are read from ClickHouse as text and hashed here.
 */
export function hash32(s: string): number {
  let h = 0x9747b28c;
  for (let i = 0; i < s.length; i += 1) {
    let k = Math.imul(s.charCodeAt(i), 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  h ^= s.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Smallest buffer of unsorted additions that triggers a merge into the sorted array. */
const MIN_PENDING = 4_096;

export class KeySet {
  private sorted = new Uint32Array(0);
  private sortedBits = new Uint16Array(0);
  private readonly pending = new Map<number, number>();

  /** Adds `id` with `bits` (1..0xffff), or ORs them into a member's. */
  add(id: string, bits = 1): void {
    const h = hash32(id);
    const p = this.pending.get(h);
    if (p !== undefined) {
      this.pending.set(h, p | bits);
      return;
    }
    const i = this.indexInSorted(h);
    if (i >= 0) {
      this.sortedBits[i] = (this.sortedBits[i] as number) | bits;
      return;
    }
    this.pending.set(h, bits);
    // Merging costs O(size): waiting for size/8 additions keeps it O(1) per addition on average.
    if (this.pending.size >= Math.max(MIN_PENDING, this.sorted.length >>> 3)) this.merge();
  }

  has(id: string): boolean {
    return this.bits(id) !== 0;
  }

  /** The bits `id` was added with (ORed), 0 for a non-member. */
  bits(id: string): number {
    const h = hash32(id);
    const p = this.pending.get(h);
    if (p !== undefined) return p;
    const i = this.indexInSorted(h);
    return i >= 0 ? (this.sortedBits[i] as number) : 0;
  }

  /** Distinct hashes held (ids whose hashes collide count once). */
  get size(): number {
    return this.sorted.length + this.pending.size;
  }

  /** Bytes of the hashes and bits (the sorted arrays and, at 16 bytes per entry, the buffer). */
  get bytes(): number {
    return this.sorted.byteLength + this.sortedBits.byteLength + this.pending.size * 16;
  }

  private indexInSorted(h: number): number {
    const a = this.sorted;
    let lo = 0;
    let hi = a.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = a[mid] as number;
      if (v === h) return mid;
      if (v < h) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  private merge(): void {
    const add = Uint32Array.from(this.pending.keys()).sort();
    const out = new Uint32Array(this.sorted.length + add.length);
    const outBits = new Uint16Array(out.length);
    let i = 0;
    let j = 0;
    let k = 0;
    // Both inputs are sorted and disjoint (add() ORs into members), so a plain merge keeps it a set.
    while (i < this.sorted.length || j < add.length) {
      const a = i < this.sorted.length ? (this.sorted[i] as number) : Number.POSITIVE_INFINITY;
      const b = j < add.length ? (add[j] as number) : Number.POSITIVE_INFINITY;
      if (a < b) {
        out[k] = a;
        outBits[k++] = this.sortedBits[i++] as number;
      } else {
        out[k] = b;
        outBits[k++] = this.pending.get(b) as number;
        j += 1;
      }
    }
    this.sorted = out;
    this.sortedBits = outBits;
    this.pending.clear();
  }
}
