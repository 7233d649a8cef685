import { describe, expect, it } from 'vitest';
import { PublishAdmission } from './admission.ts';

function gate() {
  const clock = { t: 0 };
  const a = new PublishAdmission({ targetMs: 500, intervalMs: 1_000, now: () => clock.t });
  return { a, clock };
}

describe('PublishAdmission', () => {
  it('admits while the backlog is under the target', () => {
    const { a } = gate();
    a.observe(2_000);
    expect(a.shed(400)).toBe(false);
  });

  it('does not shed on a momentary stall: slow acknowledgements shorter than the interval', () => {
    const { a, clock } = gate();
    // A 900 ms stall: the publishes it held come back slow for a moment, then fast again.
    for (let t = 0; t <= 400; t += 50) {
      clock.t = t;
      a.observe(900 - t);
      expect(a.shed(900 - t)).toBe(false);
    }
    clock.t = 450;
    a.observe(20);
    clock.t = 2_000;
    expect(a.shed(700)).toBe(false);
  });

  it('sheds once publishes have waited past the target for a whole interval, and while the backlog stays over it', () => {
    const { a, clock } = gate();
    for (let t = 0; t < 1_000; t += 100) {
      clock.t = t;
      a.observe(650);
      expect(a.shed(650)).toBe(false);
    }
    clock.t = 1_000;
    a.observe(650);
    expect(a.shed(650)).toBe(true);
    // Shedding drains the backlog: admitted again under the target...
    expect(a.shed(300)).toBe(false);
    // ...and shed again at once when it climbs back while acknowledgements are still slow.
    clock.t = 1_100;
    expect(a.shed(550)).toBe(true);
    // One acknowledgement under the target ends the episode.
    a.observe(100);
    expect(a.shed(550)).toBe(false);
  });

  it('sheds on the age of the oldest publish alone when nothing is acknowledged (hung broker)', () => {
    const { a } = gate();
    expect(a.shed(1_400)).toBe(false);
    expect(a.shed(1_501)).toBe(true);
  });
});
