import { describe, expect, it } from 'vitest';
import {
  addDays,
  canonicalTimeZone,
  currentDays,
  dayRuns,
  daysOf,
  dueDays,
  localDay,
  newestMarkByDay,
  offsetMinutes,
} from './finished-days.ts';

const at = (iso: string) => Date.parse(iso);

describe('local days', () => {
  it('are calendar days in the zone', () => {
    expect(localDay(at('2025-03-10T23:30:00Z'), 'UTC')).toBe('2025-03-10');
    expect(localDay(at('2025-03-10T23:30:00Z'), 'Asia/Kolkata')).toBe('2025-03-11');
    expect(localDay(at('2025-03-10T03:30:00Z'), 'America/New_York')).toBe('2025-03-09');
    expect(addDays('2024-02-28', 1)).toBe('2024-02-29');
    expect(daysOf('2024-12-30', '2025-01-02')).toEqual([
      '2024-12-30',
      '2024-12-31',
      '2025-01-01',
      '2025-01-02',
    ]);
  });

  // StrykerJS: the sign of a negative offset was unpinned (a mutant reading UTC-5 as +5 survived).
  it('reads UTC offsets in minutes, west of Greenwich negative', () => {
    const jan = at('2025-01-15T12:00:00Z');
    expect(offsetMinutes('America/New_York', jan)).toBe(-300);
    expect(offsetMinutes('America/New_York', at('2025-07-15T12:00:00Z'))).toBe(-240);
    expect(offsetMinutes('Asia/Kolkata', jan)).toBe(330);
    expect(offsetMinutes('Asia/Kathmandu', jan)).toBe(345);
    expect(offsetMinutes('UTC', jan)).toBe(0);
    expect(offsetMinutes('Nowhere/Land', jan)).toBeUndefined();
    // Marks are read through the same offsets: 03:30 UTC is the evening before in New York.
    const marks = [{ hourMs: at('2025-03-10T03:00:00Z'), markedMs: 1 }];
    expect([...newestMarkByDay(marks, 'America/New_York', '2025-03-09').keys()]).toEqual(['2025-03-09']);
  });

  it('canonicalises zone names and refuses unknown ones', () => {
    expect(canonicalTimeZone('europe/berlin')).toBe('Europe/Berlin');
    expect(canonicalTimeZone('UTC')).toBe('UTC');
    expect(canonicalTimeZone("UTC'; DROP")).toBeUndefined();
    expect(canonicalTimeZone('Nowhere/Land')).toBeUndefined();
  });
});

describe('marks', () => {
  it('affect the local days an hour overlaps and the 30 after them', () => {
    const m = [{ hourMs: at('2025-03-10T23:00:00Z'), markedMs: 5 }];
    const utc = newestMarkByDay(m, 'UTC', '2025-12-31');
    expect([...utc.keys()].sort()).toEqual(daysOf('2025-03-10', '2025-04-09'));
    // 23:00-24:00Z is 04:30-05:30 on the 11th in Kolkata.
    expect([...newestMarkByDay(m, 'Asia/Kolkata', '2025-12-31').keys()][0]).toBe('2025-03-11');
    // An hour across a local midnight (Kolkata 23:30-00:30) affects both days.
    const across = newestMarkByDay(
      [{ hourMs: at('2025-03-10T18:00:00Z'), markedMs: 1 }],
      'Asia/Kolkata',
      '2025-12-31',
    );
    expect(across.has('2025-03-10') && across.has('2025-04-10')).toBe(true);
    expect(across.has('2025-04-11')).toBe(false);
    // Capped at the last day asked about; the newest mark wins.
    const two = newestMarkByDay(
      [
        { hourMs: at('2025-03-01T10:00:00Z'), markedMs: 7 },
        { hourMs: at('2025-03-02T10:00:00Z'), markedMs: 3 },
      ],
      'UTC',
      '2025-03-05',
    );
    expect(Object.fromEntries(two)).toEqual({
      '2025-03-01': 7,
      '2025-03-02': 7,
      '2025-03-03': 7,
      '2025-03-04': 7,
      '2025-03-05': 7,
    });
  });

  it('read local days right across a daylight-saving change', () => {
    // Berlin: 2025-03-30 01:00Z is 03:00 CEST (the change); 22:00Z on the 30th is 00:00 on the 31st.
    const at22 = newestMarkByDay(
      [{ hourMs: at('2025-03-30T22:00:00Z'), markedMs: 1 }],
      'Europe/Berlin',
      '2025-12-31',
    );
    expect([...at22.keys()].sort()[0]).toBe('2025-03-31');
    const at21 = newestMarkByDay(
      [{ hourMs: at('2025-03-29T22:00:00Z'), markedMs: 1 }],
      'Europe/Berlin',
      '2025-12-31',
    );
    expect([...at21.keys()].sort()[0]).toBe('2025-03-29'); // 23:00 CET on the 29th
  });
});

describe('due days', () => {
  const nowMs = at('2025-03-20T12:00:00Z');
  const settleMs = 60_000;
  const base = { tz: 'UTC', today: '2025-03-20', nowMs, settleMs };

  it('are closed days never computed or computed before their newest trusted mark, newest first', () => {
    const marks = [{ hourMs: at('2025-03-17T10:00:00Z'), markedMs: nowMs - 10 * 60_000 }];
    const done = new Map([
      ['2025-03-17', nowMs - 20 * 60_000],
      ['2025-03-18', nowMs - 5 * 60_000],
    ]);
    // 17th: computed before the mark; 18th: after it; 19th: never; 20th: today, not closed.
    expect(dueDays({ ...base, marks, done })).toEqual({ due: ['2025-03-19', '2025-03-17'], waiting: 0 });
  });

  it('are due when computed in the same millisecond as their newest mark (at or after is stale)', () => {
    const markedMs = nowMs - 10 * 60_000;
    const marks = [{ hourMs: at('2025-03-19T10:00:00Z'), markedMs }];
    expect(dueDays({ ...base, marks, done: new Map([['2025-03-19', markedMs]]) }).due).toEqual([
      '2025-03-19',
    ]);
    expect(dueDays({ ...base, marks, done: new Map([['2025-03-19', markedMs + 1]]) }).due).toEqual([]);
  });

  it('come newest first whatever the order of the marks', () => {
    const markedMs = nowMs - 10 * 60_000;
    const marks = [
      { hourMs: at('2025-03-19T10:00:00Z'), markedMs },
      { hourMs: at('2025-03-16T10:00:00Z'), markedMs },
    ];
    expect(dueDays({ ...base, marks, done: new Map() }).due).toEqual([
      '2025-03-19',
      '2025-03-18',
      '2025-03-17',
      '2025-03-16',
    ]);
  });

  it('wait for a fresh mark to settle, unless the day was computed a settle interval ago', () => {
    const fresh = [{ hourMs: at('2025-03-17T10:00:00Z'), markedMs: nowMs - 10_000 }];
    const recently = new Map(
      ['2025-03-17', '2025-03-18', '2025-03-19'].map((d) => [d, nowMs - settleMs - 30_000] as const),
    );
    expect(dueDays({ ...base, marks: fresh, done: recently })).toEqual({ due: [], waiting: 3 });
    const long = new Map([...recently].map(([d]) => [d, nowMs - 3 * settleMs] as const));
    expect(dueDays({ ...base, marks: fresh, done: long }).due).toHaveLength(3);
  });

  it('leave days whose window reaches before the facts retention kept', () => {
    const marks = [{ hourMs: at('2025-03-17T10:00:00Z'), markedMs: nowMs - 10 * 60_000 }];
    const done = new Map<string, number>();
    expect(dueDays({ ...base, marks, done, factsFrom: '2025-02-17' }).due).toEqual(['2025-03-19']);
    expect(dueDays({ ...base, marks, done, factsFrom: '2025-01-01' }).due).toHaveLength(3);
  });
});

describe('current days', () => {
  it('are closed days computed after their newest mark, or never marked at all', () => {
    const marks = [{ hourMs: at('2025-03-10T10:00:00Z'), markedMs: 100 }];
    const done = new Map([
      ['2025-03-10', 50],
      ['2025-03-11', 200],
    ]);
    const newest = newestMarkByDay(marks, 'UTC', '2025-04-20');
    const c = currentDays({ from: '2025-02-01', to: '2025-04-20', newest, done, today: '2025-03-13' });
    expect(c.has('2025-02-01')).toBe(true); // no activity in its windows
    expect(c.has('2025-03-10')).toBe(false); // stale
    expect(c.has('2025-03-11')).toBe(true);
    expect(c.has('2025-03-12')).toBe(false); // marked, never computed
    expect(c.has('2025-03-13')).toBe(false); // today
    expect(c.has('2025-04-20')).toBe(false);
  });

  it('are exactly the closed days of the range when nothing was marked: up to yesterday, inclusive', () => {
    const none = new Map<string, number>();
    const c = currentDays({
      from: '2025-03-01',
      to: '2025-03-20',
      newest: none,
      done: none,
      today: '2025-03-13',
    });
    expect([...c]).toEqual(daysOf('2025-03-01', '2025-03-12'));
  });

  it('are stale when computed in the same millisecond as their newest mark', () => {
    const newest = new Map([['2025-03-10', 100]]);
    const current = (computed: number) =>
      currentDays({
        from: '2025-03-10',
        to: '2025-03-10',
        newest,
        done: new Map([['2025-03-10', computed]]),
        today: '2025-03-13',
      });
    expect(current(100).size).toBe(0);
    expect(current(101).size).toBe(1);
  });
});

describe('day runs', () => {
  it('split days into consecutive runs of at most n days', () => {
    expect(
      dayRuns(['2025-01-05', '2025-01-01', '2025-01-02', '2025-01-03', '2025-01-04', '2025-01-09'], 3),
    ).toEqual([
      ['2025-01-01', '2025-01-03'],
      ['2025-01-04', '2025-01-05'],
      ['2025-01-09', '2025-01-09'],
    ]);
  });
});
