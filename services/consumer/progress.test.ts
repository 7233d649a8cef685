import { describe, expect, it } from 'vitest';
import { PartitionProgress } from './progress.ts';

function clock() {
  let t = 1_000_000;
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

describe('PartitionProgress', () => {
  it('lag is high watermark - committed, and stalled time grows while the committed offset stays put', () => {
    const c = clock();
    const p = new PartitionProgress(c.now);
    p.assign([0, 1]);
    p.observe(0, 100n, 40n);
    p.observe(1, 10n, 10n);
    c.advance(30_000);
    // The timer's read: more messages arrived, nothing was committed.
    p.observe(0, 150n, 40n);
    p.observe(1, 10n, 10n);
    expect(p.states()).toEqual([
      { partition: 0, lag: 110, stalledSeconds: 30 },
      { partition: 1, lag: 0, stalledSeconds: 0 },
    ]);
    expect(p.stuck(20_000).map((s) => s.partition)).toEqual([0]);
    expect(p.stuck(60_000)).toEqual([]);
  });

  it('an advancing committed offset resets the stalled time, and so does catching up', () => {
    const c = clock();
    const p = new PartitionProgress(c.now);
    p.assign([0]);
    p.observe(0, 100n, 0n);
    c.advance(10_000);
    p.observe(0, 100n, 50n);
    expect(p.states()[0]?.stalledSeconds).toBe(0);
    c.advance(5_000);
    expect(p.states()[0]).toEqual({ partition: 0, lag: 50, stalledSeconds: 5 });
    p.observe(0, 100n, 100n);
    expect(p.states()[0]).toEqual({ partition: 0, lag: 0, stalledSeconds: 0 });
  });

  it('a partition idle for long is not stalled the moment a message arrives', () => {
    const c = clock();
    const p = new PartitionProgress(c.now);
    p.assign([0]);
    p.observe(0, 5n, 5n);
    c.advance(3_600_000);
    p.observe(0, 5n, 5n);
    c.advance(1_000);
    p.observe(0, 6n, 5n);
    expect(p.states()[0]).toEqual({ partition: 0, lag: 1, stalledSeconds: 1 });
  });

  it('never moves offsets backwards (a Kafka read that raced a newer commit)', () => {
    const c = clock();
    const p = new PartitionProgress(c.now);
    p.assign([0]);
    p.observe(0, 100n, 90n);
    p.observe(0, 95n, 60n);
    expect(p.states()[0]?.lag).toBe(10);
  });

  it('reports only owned partitions, and forgets those that left on a new assignment', () => {
    const c = clock();
    const p = new PartitionProgress(c.now);
    p.assign([0, 1]);
    p.observe(0, 10n, 0n);
    p.observe(1, 10n, 0n);
    p.observe(2, 10n, 0n);
    expect(p.states().map((s) => s.partition)).toEqual([0, 1]);
    c.advance(60_000);
    p.assign([1]);
    expect(p.states()).toEqual([]);
    p.observe(1, 10n, 0n);
    expect(p.states()).toEqual([{ partition: 1, lag: 10, stalledSeconds: 0 }]);
  });
});
