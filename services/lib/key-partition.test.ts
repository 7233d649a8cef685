import fc from 'fast-check';
import { Partitioners } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { keyPartition } from './key-partition.ts';

const kafkajs = Partitioners.DefaultPartitioner();
const metadata = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    partitionErrorCode: 0,
    partitionId: i,
    leader: 0,
    replicas: [0],
    isr: [0],
  }));

describe('keyPartition', () => {
  it('puts every key where kafkajs’s default partitioner does', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 60 }),
          fc.string({ unit: 'binary', maxLength: 20 }),
          fc.uuid(),
          // Longer than the scratch buffer takes: the allocating path.
          fc.string({ minLength: 342, maxLength: 500 }),
        ),
        fc.integer({ min: 1, max: 64 }),
        (key, n) => {
          const want = kafkajs({ topic: 't', partitionMetadata: metadata(n), message: { key, value: null } });
          expect(keyPartition(key, n)).toBe(want);
        },
      ),
      { numRuns: 5_000 },
    );
  });

  it('spreads keys over every partition', () => {
    const seen = new Set(Array.from({ length: 600 }, (_, i) => keyPartition(`user-${i}`, 6)));
    expect([...seen].sort()).toEqual([0, 1, 2, 3, 4, 5]);
  });
});
