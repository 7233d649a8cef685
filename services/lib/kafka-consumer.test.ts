import { describe, expect, it } from 'vitest';
import { CommitLedger } from './kafka-consumer.ts';

describe('CommitLedger', () => {
  it('commits only forward, per partition', () => {
    const l = new CommitLedger();
    const g = l.assign([0, 1]);
    expect(l.mayCommit(0, g, 10n)).toBe(true);
    l.committed(0, 10n);
    expect(l.mayCommit(0, g, 10n)).toBe(false);
    expect(l.mayCommit(0, g, 9n)).toBe(false);
    expect(l.mayCommit(0, g, 11n)).toBe(true);
    expect(l.mayCommit(1, g, 1n)).toBe(true);
  });

  it('never commits for a partition that is not owned', () => {
    const l = new CommitLedger();
    const g = l.assign([0]);
    expect(l.mayCommit(1, g, 5n)).toBe(false);
  });

  it('refuses a handler from before a rebalance, even when the partition came back', () => {
    const l = new CommitLedger();
    const old = l.assign([0, 1]);
    l.revokeAll();
    expect(l.mayCommit(0, old, 5n)).toBe(false);
    const now = l.assign([0]);
    expect(l.mayCommit(0, old, 5n)).toBe(false);
    expect(l.mayCommit(0, now, 5n)).toBe(true);
    expect(l.partitions()).toEqual([0]);
  });
});
