import { describe, expect, it } from 'vitest';
import { type Limits, validateEvent } from '../collector/validation/validate.ts';
import {
  badEvent,
  cumulativeWeights,
  dayOfActivity,
  liveEvent,
  population,
  rng,
  weekdayFactor,
} from './generator.ts';

const TODAY = 20_100; // 2025-01-12, a Sunday
const users = population({ seed: 7, users: 2000, anonymousShare: 0.1, testAccountShare: 0.02, today: TODAY });
const NOW = (TODAY + 1) * 86_400_000;
// The collector's documented defaults (issue 4): 32 KB per event, 365 days old, 24 h ahead.
const LIMITS: Limits = {
  maxEventBytes: 32_768,
  maxDepth: 10,
  maxKeys: 500,
  maxAgeMs: 365 * 86_400_000,
  maxFutureMs: 86_400_000,
  maxSkewCorrectionMs: 86_400_000,
};
const accepts = (e: unknown): boolean => validateEvent(e, { receivedAt: NOW }, LIMITS).ok;

function eventsOn(day: number) {
  const r = rng(day);
  return users.flatMap((u) => dayOfActivity(r, u, day, NOW));
}

describe('demo generator', () => {
  it('is deterministic for a seed', () => {
    const again = population({
      seed: 7,
      users: 2000,
      anonymousShare: 0.1,
      testAccountShare: 0.02,
      today: TODAY,
    });
    expect(again).toEqual(users);
    expect(eventsOn(TODAY - 3)).toEqual(eventsOn(TODAY - 3));
  });

  it('has power-law activity: the busiest tenth of users sends a large share of events', () => {
    const counts = new Map<string, number>();
    for (let d = TODAY - 27; d <= TODAY; d++) {
      for (const e of eventsOn(d)) {
        const id = String(e.user_id ?? e.anonymous_id);
        counts.set(id, (counts.get(id) ?? 0) + 1);
      }
    }
    const sorted = [...counts.values()].sort((a, b) => b - a);
    const total = sorted.reduce((s, n) => s + n, 0);
    const top = sorted.slice(0, Math.ceil(users.length / 10)).reduce((s, n) => s + n, 0);
    expect(top / total).toBeGreaterThan(0.35);
    expect(counts.size).toBeGreaterThan(users.length * 0.5);
  });

  it('is quieter on weekends', () => {
    expect(weekdayFactor(TODAY)).toBeLessThan(weekdayFactor(TODAY - 5));
    const weekday = [1, 2, 3].map((k) => eventsOn(TODAY - 7 + k).length).reduce((a, b) => a + b) / 3;
    const weekend = [0, 6].map((k) => eventsOn(TODAY - 7 + k).length).reduce((a, b) => a + b) / 2;
    expect(weekend).toBeLessThan(weekday * 0.8);
  });

  it('produces events the collector accepts, covering every dimension with several values', () => {
    const events = eventsOn(TODAY - 1);
    for (const e of events.slice(0, 500)) {
      expect(validateEvent(e, { receivedAt: NOW }, LIMITS)).toMatchObject({ ok: true });
    }
    const distinct = (f: (e: (typeof events)[number]) => unknown) => new Set(events.map(f)).size;
    expect(distinct((e) => e.feature)).toBeGreaterThan(5);
    expect(distinct((e) => e.device?.type)).toBeGreaterThan(2);
    expect(distinct((e) => e.geo?.country_code)).toBeGreaterThan(8);
    expect(distinct((e) => e.user?.segment)).toBeGreaterThan(3);
    expect(events.some((e) => e.user_id === undefined)).toBe(true);
    expect(events.some((e) => e.user?.is_test_account)).toBe(true);
  });

  it('never sends events from the future', () => {
    const events = dayOfActivity(
      rng(1),
      { ...users[0], weight: 40 } as (typeof users)[0],
      TODAY,
      NOW - 86_400_000,
    );
    expect(events).toEqual([]);
    const cumulative = cumulativeWeights(users);
    const r = rng(3);
    const live = Array.from({ length: 200 }, () => liveEvent(r, users, cumulative, NOW));
    expect(live.every((e) => e.timestamp === new Date(NOW).toISOString())).toBe(true);
  });

  it('picks live users in proportion to their weight', () => {
    // Four users weighing 1, 2, 3 and 14: over 20,000 seeded draws each share is within 1.5 points
    // of weight / 20 (binomial sd is at most 0.36 points), and a uniform pick (25% each) is far off.
    const weights = [1, 2, 3, 14];
    const few = weights.map((weight, i) => ({ ...users[i], userId: `w${i}`, weight }) as (typeof users)[0]);
    const r = rng(11);
    const draws = 20_000;
    const picked = new Map<string, number>();
    for (let i = 0; i < draws; i++) {
      const id = String(liveEvent(r, few, cumulativeWeights(few), NOW).user_id);
      picked.set(id, (picked.get(id) ?? 0) + 1);
    }
    const shares = weights.map((_, i) => (picked.get(`w${i}`) ?? 0) / draws);
    shares.forEach((share, i) => {
      expect(Math.abs(share - (weights[i] ?? 0) / 20), `w${i}: ${share}`).toBeLessThan(0.015);
    });
  });

  it('makes invalid events the collector rejects', () => {
    const r = rng(5);
    for (let i = 0; i < 50; i++) {
      expect(accepts(badEvent(r, NOW))).toBe(false);
    }
  });
});
