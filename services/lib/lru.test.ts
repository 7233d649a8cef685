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
