import { describe, expect, it } from 'vitest';
import { PublishAdmission } from './admission.ts';

function gate() {
  const clock = { t: 0 };
  const a = new PublishAdmission({ targetMs: 500, intervalMs: 500, now: () => clock.t });
  return { a, clock };
}

describe('PublishAdmission', () => {
  it('admits while the backlog is under the target', () => {
    const { a } = gate();
    expect(a.shed(400)).toBe(false);
  });

  it('does not shed on a stall shorter than the interval', () => {
    const { a, clock } = gate();
    // The backlog climbs past the target and is back under it within 450 ms.
    for (let t = 0; t <= 450; t += 50) {
      clock.t = t;
      expect(a.shed(550 + t)).toBe(false);
    }
    clock.t = 500;
    expect(a.shed(100)).toBe(false);
    clock.t = 600;
    expect(a.shed(600)).toBe(false);
  });

  it('sheds once the backlog stayed over the target for an interval, then at once while it keeps coming back', () => {
    const { a, clock } = gate();
    for (let t = 0; t < 500; t += 100) {
      clock.t = t;
      expect(a.shed(600)).toBe(false);
    }
    clock.t = 500;
    expect(a.shed(700)).toBe(true);
    // Shedding drains it: admitted again under the target...
    clock.t = 600;
    expect(a.shed(300)).toBe(false);
    // ...and refused at once when it climbs back soon after the last refusal.
    clock.t = 700;
    expect(a.shed(550)).toBe(true);
    clock.t = 8_000;
    expect(a.shed(300)).toBe(false);
    expect(a.shed(550)).toBe(true);
    // Long calm (20 intervals since the last refusal): a new episode needs a whole interval again.
    clock.t = 30_000;
    expect(a.shed(300)).toBe(false);
    clock.t = 30_100;
    expect(a.shed(550)).toBe(false);
  });

  it('sheds at once past target + interval (a hung broker: nothing watched it grow)', () => {
    const { a } = gate();
    expect(a.shed(999)).toBe(false);
    expect(a.shed(1_001)).toBe(true);
  });
});
