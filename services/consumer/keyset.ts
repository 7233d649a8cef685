/**
 * A compact set of strings for "may this id have a profile / an identity link?", so the consumer
 * asks ClickHouse only about ids that may (profiles.ts). It stores a 32-bit hash per id, not the
 * id: 4 bytes per member in a sorted Uint32Array (1M users: 4 MB), plus a small unsorted buffer of
 * recent additions merged in when it grows.
 *
 * Answers are one-sided: `has` is true for every id ever added (no false negatives, so a profile
 * is never missed), and true for a non-member with probability about size / 2^32 (a false
 * positive: one look-up that finds nothing; 0.023% at 1M members, measured in keyset.test.ts).
 * Members are never removed: profiles and links are never deleted either.
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
  private readonly pending = new Set<number>();

  add(id: string): void {
    const h = hash32(id);
    if (this.pending.has(h) || this.inSorted(h)) return;
    this.pending.add(h);
    // Merging costs O(size): waiting for size/8 additions keeps it O(1) per addition on average.
    if (this.pending.size >= Math.max(MIN_PENDING, this.sorted.length >>> 3)) this.merge();
  }

  has(id: string): boolean {
    const h = hash32(id);
    return this.pending.has(h) || this.inSorted(h);
  }

  /** Distinct hashes held (ids whose hashes collide count once). */
  get size(): number {
    return this.sorted.length + this.pending.size;
  }

  /** Bytes of the hashes (the sorted array and, at 8 bytes per entry, the buffer). */
  get bytes(): number {
    return this.sorted.byteLength + this.pending.size * 8;
  }

  private inSorted(h: number): boolean {
    const a = this.sorted;
    let lo = 0;
    let hi = a.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = a[mid] as number;
      if (v === h) return true;
      if (v < h) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }

  private merge(): void {
    const add = Uint32Array.from(this.pending).sort();
    const out = new Uint32Array(this.sorted.length + add.length);
    let i = 0;
    let j = 0;
    let k = 0;
    // Both inputs are sorted and disjoint (add() skips members), so a plain merge keeps it a set.
    while (i < this.sorted.length && j < add.length) {
      const a = this.sorted[i] as number;
      const b = add[j] as number;
      if (a < b) {
        out[k++] = a;
        i += 1;
      } else {
        out[k++] = b;
        j += 1;
      }
    }
    while (i < this.sorted.length) out[k++] = this.sorted[i++] as number;
    while (j < add.length) out[k++] = add[j++] as number;
    this.sorted = out;
    this.pending.clear();
  }
}
