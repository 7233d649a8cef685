import { describe, expect, it } from 'vitest';
import { finishedRowsQuery, finishedSlice } from './finished.ts';
import type { ActiveUsersQuery } from './params.ts';

const q = (over: Partial<ActiveUsersQuery> = {}): ActiveUsersQuery => ({
  from: '2025-01-01',
  to: '2025-03-01',
  tz: 'UTC',
  filters: {},
  includeTest: false,
  includeBots: false,
  window: 'rolling',
  groupBy: [],
  exact: false,
  ...over,
});

describe('finished slice of a request', () => {
  it('covers the population, one canonical group-by, or one value of one canonical dimension', () => {
    expect(finishedSlice(q())).toEqual({ kind: 0 });
    expect(finishedSlice(q({ groupBy: ['feature'] }))).toEqual({ kind: 1, groupBy: 'feature' });
    expect(finishedSlice(q({ groupBy: ['segment'] }))).toEqual({ kind: 4, groupBy: 'segment' });
    expect(finishedSlice(q({ filters: { country: ['DE'] } }))).toEqual({ kind: 3, value: 'DE' });
    expect(finishedSlice(q({ filters: { device_type: [''] } }))).toEqual({ kind: 2, value: '' });
  });

  it('leaves everything else to the sketches', () => {
    for (const over of [
      { includeTest: true },
      { includeBots: true },
      { window: 'calendar' as const },
      { groupBy: ['platform' as const] },
      { groupBy: ['feature' as const, 'country' as const] },
      { filters: { feature: ['a', 'b'] } },
      { filters: { feature: ['a'], country: ['DE'] } },
      { filters: { feature: ['a'] }, groupBy: ['country' as const] },
      { filters: { region: ['BE'] } },
    ]) {
      expect(finishedSlice(q(over)), JSON.stringify(over)).toBeUndefined();
    }
  });

  it('reads one slice and range, values quoted', () => {
    const sql = finishedRowsQuery('Asia/Kolkata', { kind: 3, value: "D'E" }, '2025-01-01', '2025-01-31');
    expect(sql).toContain("tz = 'Asia/Kolkata'");
    expect(sql).toContain('kind = 3');
    expect(sql).toContain("value = 'D\\'E'");
    expect(sql).toContain("day <= '2025-01-31'");
  });
});
