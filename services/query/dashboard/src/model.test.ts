import { describe, expect, it } from 'vitest';
import { apiParams, defaultState, stateFromHash, stateToHash, toSeries } from './model.ts';

describe('dashboard state', () => {
  it('round-trips through the location hash', () => {
    const s = {
      ...defaultState('2025-03-10'),
      tz: 'Europe/Berlin',
      window: 'calendar' as const,
      groupBy: ['country' as const, 'platform' as const],
      filters: { country: ['US', 'D&E'], segment: ['pro'] },
      includeBots: true,
      refreshSeconds: 10,
    };
    expect(stateFromHash(stateToHash(s), '2025-01-01')).toEqual(s);
  });

  it('falls back to defaults for anything invalid in the hash', () => {
    const s = stateFromHash('#from=2025-02-30&window=weekly&group_by=city,country&refresh=7', '2025-03-10');
    expect(s.from).toBe('2025-02-09');
    expect(s.window).toBe('rolling');
    expect(s.groupBy).toEqual(['country']);
    expect(s.refreshSeconds).toBe(5);
  });

  it('builds the API query with repeated filter keys', () => {
    const p = apiParams({ ...defaultState('2025-03-10'), filters: { country: ['US', 'DE'] } });
    expect(p.getAll('country')).toEqual(['US', 'DE']);
    expect(p.get('include_test')).toBeNull();
    expect(apiParams(defaultState('2025-03-10'), false).has('window')).toBe(false);
  });
});

describe('toSeries', () => {
  const rows = [
    { date: '2025-03-02', country: 'US', dau: 5, mau: 9 },
    { date: '2025-03-01', country: 'US', dau: 3, mau: 8 },
    { date: '2025-03-01', country: 'DE', dau: 1, mau: 2 },
  ];

  it('makes one line per measure without a group-by, ordered by day', () => {
    const s = toSeries(
      rows.filter((r) => r.country === 'US'),
      [],
      ['dau', 'mau'],
    );
    expect(s.x).toEqual([1740787200, 1740873600]);
    expect(s.lines).toEqual([
      { label: 'dau', values: [3, 5] },
      { label: 'mau', values: [8, 9] },
    ]);
  });

  it('makes one line per group, largest first, with gaps as null', () => {
    const s = toSeries(rows, ['country'], ['dau']);
    expect(s.lines).toEqual([
      { label: 'US dau', values: [3, 5] },
      { label: 'DE dau', values: [1, null] },
    ]);
  });
});
