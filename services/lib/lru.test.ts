import { describe, expect, it } from 'vitest';
import { Lru } from './lru.ts';

describe('Lru', () => {
  it('evicts the least recently used entry beyond its size', () => {
    const lru = new Lru<string, number>(2);
    lru.set('a', 1);
    lru.set('b', 2);
    expect(lru.get('a')).toBe(1);
    lru.set('c', 3);
    expect(lru.get('b')).toBeUndefined();
    expect(lru.get('a')).toBe(1);
    expect(lru.size).toBe(2);
  });

  it('never holds more than its size, however many keys pass through', () => {
    const lru = new Lru<number, number>(1_000);
    let largest = 0;
    for (let i = 0; i < 100_000; i += 1) {
      lru.set(i, i);
      largest = Math.max(largest, lru.size);
    }
    expect(largest).toBe(1_000);
    // The newest half is always kept whole.
    for (let i = 100_000 - 500; i < 100_000; i += 1) expect(lru.peek(i)).toBe(i);
    expect(lru.peek(0)).toBeUndefined();
  });

  it('with a byte budget, holds at most that many estimated bytes, whatever the entry count allows', () => {
    // Values the size of their number: 1,000 entries of up to 1,000 bytes would be ~500 KB.
    const lru = new Lru<number, number>(1_000, Date.now, { max: 10_000, of: (_k, v) => v });
    const held = () => {
      let bytes = 0;
      for (let k = 0; k < 1_000; k += 1) bytes += lru.peek(k) ?? 0;
      return bytes;
    };
    let largest = 0;
    for (let i = 0; i < 1_000; i += 1) {
      lru.set(i, i);
      largest = Math.max(largest, held());
    }
    expect(largest).toBeLessThanOrEqual(10_000);
    // Still the newest entries that are kept, and small entries still fill up to the count cap.
    expect(lru.peek(999)).toBe(999);
    expect(lru.peek(0)).toBeUndefined();
    const small = new Lru<number, number>(100, Date.now, { max: 10_000, of: () => 1 });
    for (let i = 0; i < 1_000; i += 1) small.set(i, i);
    expect(small.size).toBe(100);
  });

  it('keeps an entry larger than half the byte budget until the next one arrives', () => {
    const lru = new Lru<string, string>(10, Date.now, { max: 100, of: (_k, v) => v.length });
    lru.set('a', 'x'.repeat(10));
    lru.set('big', 'x'.repeat(80));
    expect(lru.peek('big')).toHaveLength(80);
    expect(lru.peek('a')).toHaveLength(10);
    lru.set('b', 'x'.repeat(10));
    expect(lru.peek('a')).toBeUndefined();
    expect(lru.peek('big')).toHaveLength(80);
  });

  it('keeps an entry that is used while others stream past', () => {
    const lru = new Lru<string, number>(100);
    lru.set('hot', 1);
    for (let i = 0; i < 10_000; i += 1) {
      lru.set(`cold-${i}`, i);
      if (i % 40 === 0) expect(lru.get('hot')).toBe(1);
    }
    expect(lru.get('hot')).toBe(1);
    expect(lru.get('cold-0')).toBeUndefined();
  });

  it('peek does not refresh recency; set and delete reach both generations', () => {
    const lru = new Lru<string, number>(4);
    lru.set('a', 1);
    lru.set('b', 2);
    lru.set('c', 3); // a, b move to the old generation
    expect(lru.peek('a')).toBe(1);
    lru.set('a', 10); // replaces the old entry, does not duplicate it
    expect(lru.size).toBe(3);
    expect(lru.get('a')).toBe(10);
    lru.delete('b');
    expect(lru.peek('b')).toBeUndefined();
    lru.set('d', 4);
    lru.set('e', 5); // b's generation is dropped; peeked-only entries go with it
    expect(lru.peek('a')).toBe(10);
  });

  it('forgets an entry after its TTL, in either generation', () => {
    let now = 0;
    const lru = new Lru<string, number>(4, () => now);
    lru.set('a', 1, 100);
    now = 99;
    expect(lru.has('a')).toBe(true);
    now = 100;
    expect(lru.has('a')).toBe(false);
    lru.set('b', 2, 50);
    lru.set('c', 3);
    lru.set('d', 4); // b is old now
    now = 150;
    expect(lru.get('b')).toBeUndefined();
    expect(lru.get('c')).toBe(3);
  });

  it('refuses a size that cannot hold two generations', () => {
    expect(() => new Lru(1)).toThrow(RangeError);
  });
});
