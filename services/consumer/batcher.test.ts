import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Batcher } from './batcher.ts';

function clock(start = 1_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return {
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
  };
}

describe('Batcher', () => {
  it('is due at max rows', () => {
    const c = clock();
    const b = new Batcher<number>({ maxRows: 3, maxBytes: 1_000, maxAgeMs: 1_000 }, c.now);
    b.add(1, 1);
    b.add(2, 1);
    expect(b.due()).toBeUndefined();
    b.add(3, 1);
    expect(b.due()).toBe('rows');
  });

  it('is due at max bytes', () => {
    const c = clock();
    const b = new Batcher<number>({ maxRows: 100, maxBytes: 10, maxAgeMs: 1_000 }, c.now);
    b.add(1, 6);
    expect(b.due()).toBeUndefined();
    b.add(2, 6);
    expect(b.due()).toBe('bytes');
  });

  it('is due at exactly max bytes and max rows, not one past', () => {
    const c = clock();
    const bytes = new Batcher<number>({ maxRows: 100, maxBytes: 10, maxAgeMs: 1_000 }, c.now);
    bytes.add(1, 4);
    bytes.add(2, 6);
    expect(bytes.due()).toBe('bytes');
    const rows = new Batcher<number>({ maxRows: 1, maxBytes: 1_000, maxAgeMs: 1_000 }, c.now);
    rows.add(1, 1);
    expect(rows.due()).toBe('rows');
  });

  it('is due max age after the first row, not after the last', () => {
    const c = clock();
    const b = new Batcher<number>({ maxRows: 100, maxBytes: 1_000, maxAgeMs: 500 }, c.now);
    expect(b.msUntilDue()).toBeUndefined();
    b.add(1, 1);
    c.advance(300);
    b.add(2, 1);
    expect(b.msUntilDue()).toBe(200);
    expect(b.due()).toBeUndefined();
    c.advance(200);
    expect(b.due()).toBe('time');
  });

  it('counts age from when the oldest row entered Kafka, clamped to one interval', () => {
    const c = clock(10_000);
    const b = new Batcher<number>({ maxRows: 100, maxBytes: 1_000, maxAgeMs: 500 }, c.now);
    b.add(1, 1, 9_800);
    expect(b.msUntilDue()).toBe(300);
    b.add(2, 1, 9_700);
    expect(b.msUntilDue()).toBe(200);
    b.add(3, 1, 1);
    expect(b.due()).toBe('time');
    const later = new Batcher<number>({ maxRows: 100, maxBytes: 1_000, maxAgeMs: 500 }, c.now);
    later.add(1, 1, 99_999);
    expect(later.msUntilDue()).toBe(500);
  });

  it('once caught up, is due at the idle age instead of the full interval, until taken', () => {
    const c = clock();
    const b = new Batcher<number>({ maxRows: 100, maxBytes: 1_000, maxAgeMs: 1_000, idleAgeMs: 200 }, c.now);
    b.add(1, 1);
    c.advance(150);
    expect(b.msUntilDue()).toBe(850);
    b.caughtUp();
    expect(b.msUntilDue()).toBe(50);
    expect(b.due()).toBeUndefined();
    c.advance(50);
    expect(b.due()).toBe('idle');
    b.take();
    // The next batch waits the full interval again until the source says it is caught up.
    b.add(2, 1);
    c.advance(200);
    expect(b.due()).toBeUndefined();
    expect(b.msUntilDue()).toBe(800);
  });

  it('ignores caught-up on an empty batch and never waits past the full interval', () => {
    const c = clock();
    const b = new Batcher<number>({ maxRows: 100, maxBytes: 1_000, maxAgeMs: 300, idleAgeMs: 5_000 }, c.now);
    b.caughtUp();
    b.add(1, 1);
    expect(b.msUntilDue()).toBe(300);
    b.caughtUp();
    expect(b.msUntilDue()).toBe(300);
    c.advance(300);
    expect(b.due()).toBe('time');
  });

  it('an empty batch is never due and take() returns nothing', () => {
    const c = clock();
    const b = new Batcher<number>({ maxRows: 1, maxBytes: 1, maxAgeMs: 0 }, c.now);
    c.advance(10_000);
    expect(b.due()).toBeUndefined();
    expect(b.take()).toBeUndefined();
  });

  it('numbers batches in order and hands each row the number of the batch it joined', () => {
    const c = clock();
    const b = new Batcher<string>({ maxRows: 10, maxBytes: 100, maxAgeMs: 100 }, c.now);
    expect(b.add('a', 1)).toBe(1);
    expect(b.add('b', 1)).toBe(1);
    const first = b.take();
    expect(first).toMatchObject({ seq: 1, items: ['a', 'b'], bytes: 2, openedAt: 1_000 });
    c.advance(5);
    expect(b.add('c', 3)).toBe(2);
    expect(b.take()).toMatchObject({ seq: 2, items: ['c'], bytes: 3, openedAt: 1_005 });
    expect(b.rows).toBe(0);
    expect(b.bufferedBytes).toBe(0);
  });

  it('never loses or reorders rows across takes (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 50 }), fc.boolean())), (ops) => {
        const c = clock();
        const b = new Batcher<number>({ maxRows: 7, maxBytes: 60, maxAgeMs: 10 }, c.now);
        const out: number[] = [];
        let lastSeq = 0;
        ops.forEach(([bytes, take], i) => {
          b.add(i, bytes);
          c.advance(1);
          if (take || b.due() !== undefined) {
            const batch = b.take();
            if (batch) {
              expect(batch.seq).toBe(lastSeq + 1);
              lastSeq = batch.seq;
              out.push(...batch.items);
            }
          }
        });
        out.push(...(b.take()?.items ?? []));
        expect(out).toEqual(ops.map((_, i) => i));
      }),
    );
  });

  it('rejects limits that can never flush', () => {
    expect(() => new Batcher({ maxRows: 0, maxBytes: 1, maxAgeMs: 1 }, Date.now)).toThrow(RangeError);
    expect(() => new Batcher({ maxRows: 1, maxBytes: 0, maxAgeMs: 1 }, Date.now)).toThrow(RangeError);
    expect(() => new Batcher({ maxRows: 1, maxBytes: 1, maxAgeMs: -1 }, Date.now)).toThrow(RangeError);
    expect(() => new Batcher({ maxRows: 1, maxBytes: 1, maxAgeMs: 1, idleAgeMs: -1 }, Date.now)).toThrow(
      RangeError,
    );
    // Age 0 flushes every row at once: allowed.
    expect(new Batcher({ maxRows: 1, maxBytes: 1, maxAgeMs: 0 }, Date.now).rows).toBe(0);
  });
});
