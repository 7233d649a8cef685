import { describe, expect, it } from 'vitest';
import { hash32, KeySet } from './keyset.ts';

const id = (prefix: string, i: number) => `${prefix}_u${String(i).padStart(6, '0')}`;

describe('KeySet', () => {
  it('has every id added, across merges of the buffer', () => {
    const s = new KeySet();
    for (let i = 0; i < 50_000; i += 1) s.add(id('sqmx2bvuw9', i));
    for (let i = 0; i < 50_000; i += 1) expect(s.has(id('sqmx2bvuw9', i))).toBe(true);
    expect(s.size).toBeGreaterThan(49_990);
  });

  it('adding an id twice keeps one entry', () => {
    const s = new KeySet();
    s.add('a');
    s.add('a');
    for (let i = 0; i < 10_000; i += 1) s.add(`x${i}`);
    s.add('a');
    expect(s.size).toBe(10_001);
  });

  it('keeps every bit an id was added with, in the buffer and after merges', () => {
    const s = new KeySet();
    s.add('a', 0b001);
    s.add('a', 0b100);
    expect(s.bits('a')).toBe(0b101);
    for (let i = 0; i < 10_000; i += 1) s.add(`x${i}`, 1 << (i % 16));
    s.add('a', 0b010);
    expect(s.bits('a')).toBe(0b111);
    for (let i = 0; i < 10_000; i += 1) expect(s.bits(`x${i}`) & (1 << (i % 16))).not.toBe(0);
    expect(s.bits('never added')).toBe(0);
    expect(s.has('never added')).toBe(false);
  });

  it('1M 18-character ids fit in about 6 MB with a false-positive rate near size / 2^32', () => {
    const s = new KeySet();
    const n = 1_000_000;
    for (let i = 0; i < n; i += 1) s.add(id('k3j9xq2mwa', i));
    expect(s.bytes).toBeLessThan(6.5 * 1024 * 1024);
    let falsePositives = 0;
    const probes = 1_000_000;
    for (let i = 0; i < probes; i += 1) if (s.has(id('p0v7tz4rnb', i))) falsePositives += 1;
    // Ideal: 1M / 2^32 = 0.023% -> ~233 of 1M probes; a poorly mixing hash would be far above.
    expect(falsePositives / probes).toBeLessThan(0.0005);
  });

  it('hash32 spreads sequential ids over the whole 32-bit range', () => {
    const buckets = new Array<number>(16).fill(0);
    for (let i = 0; i < 160_000; i += 1) {
      const b = hash32(id('seq', i)) >>> 28;
      buckets[b] = (buckets[b] ?? 0) + 1;
    }
    for (const n of buckets) expect(Math.abs(n - 10_000)).toBeLessThan(500);
  });
});
