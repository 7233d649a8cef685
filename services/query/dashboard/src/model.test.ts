import { describe, expect, it } from 'vitest';
import {
  apiParams,
  type DashState,
  defaultState,
  formatChange,
  previousPeriod,
  stateFromHash,
  stateToHash,
  toCsv,
  toSeries,
  withPrevious,
} from './model.ts';

describe('dashboard state', () => {
  it('round-trips every field through the location hash (a shared link keeps the whole view)', () => {
    const d = defaultState('2025-03-10');
    const s: DashState = {
      from: '2024-12-01',
      to: '2025-01-15',
      tz: 'Europe/Berlin',
      window: 'calendar',
      groupBy: ['country', 'platform'],
      filters: { country: ['US', 'D&E', ''], segment: ['pro #1'] },
      includeTest: true,
      includeBots: true,
      refreshSeconds: 10,
      compare: true,
    };
    // Every field differs from its default: a field the hash forgot would come back as the default.
    for (const k of Object.keys(d) as (keyof DashState)[]) expect(s[k], k).not.toEqual(d[k]);
    expect(Object.keys(s).sort()).toEqual(Object.keys(d).sort());
    expect(stateFromHash(stateToHash(s), '2025-01-01')).toEqual(s);
    // And the defaults survive too (compare off is not written at all).
    expect(stateToHash(d)).not.toContain('compare');
    expect(stateFromHash(stateToHash(d), '2025-01-01')).toEqual(d);
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

describe('previous period', () => {
  it('is as many days as the range, ending the day before it', () => {
    const s = { ...defaultState('2025-03-10'), from: '2025-03-01', to: '2025-03-10' };
    expect(previousPeriod(s)).toMatchObject({ from: '2025-02-19', to: '2025-02-28' });
    expect(previousPeriod({ ...s, from: '2025-03-10' })).toMatchObject({
      from: '2025-03-09',
      to: '2025-03-09',
    });
    // Everything but the range is kept, and the API query differs only in from/to.
    const p = apiParams(previousPeriod({ ...s, groupBy: ['country'], compare: true }));
    expect(p.get('group_by')).toBe('country');
  });

  it('lays the previous lines over the current days, shifted by the range', () => {
    const current = toSeries(
      [
        { date: '2025-03-03', dau: 5 },
        { date: '2025-03-04', dau: 6 },
      ],
      [],
      ['dau'],
    );
    const previous = toSeries([{ date: '2025-03-02', dau: 4 }], [], ['dau']);
    expect(withPrevious(current, previous, 2).lines).toEqual([
      { label: 'dau', values: [5, 6] },
      { label: 'dau (previous)', values: [null, 4], previous: true },
    ]);
  });

  it('says the change in percent', () => {
    expect(formatChange(110, 100)).toBe('+10.0%');
    expect(formatChange(90, 100)).toBe('−10.0%');
    expect(formatChange(0, 0)).toBe('±0%');
    expect(formatChange(3, 0)).toBe('n/a');
  });
});

describe('toCsv', () => {
  it('writes the columns and raw values in the given order, quoting where RFC 4180 needs it', () => {
    const csv = toCsv(
      ['date', 'country', 'dau', 'dau_mau'],
      [
        { date: '2025-03-02', country: 'Bosnia, "BA"', dau: 1234, dau_mau: 0.1234, exact: false },
        { date: '2025-03-01', country: '', dau: 5, dau_mau: 1, exact: true },
      ],
    );
    expect(csv).toBe(
      'date,country,dau,dau_mau,exact\r\n2025-03-02,"Bosnia, ""BA""",1234,0.1234,false\r\n2025-03-01,,5,1,true\r\n',
    );
  });
});
