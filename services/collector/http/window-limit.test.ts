import { describe, expect, it } from 'vitest';
import { WindowLimit } from './window-limit.ts';

describe('WindowLimit', () => {
  it('allows max requests per key per window, then says how long until the window ends', () => {
    let now = 1_000;
    const l = new WindowLimit({ max: 2, windowMs: 1_000, now: () => now });
    expect(l.take('a')).toBe(0);
    expect(l.take('a')).toBe(0);
    now += 300;
    expect(l.take('a')).toBe(700);
    // Other keys have their own budget.
    expect(l.take('b')).toBe(0);
    // A new window starts the count again.
    now += 700;
    expect(l.take('a')).toBe(0);
  });
});
