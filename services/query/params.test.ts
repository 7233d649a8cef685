import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalTimeZone } from '../lib/finished-days.ts';
import {
  ACTIVE_USERS_PARAMS,
  DIMENSIONS,
  dayNumber,
  type Limits,
  MAX_DATE,
  MAX_DIMENSION_VALUES,
  MAX_EXACT_RANGE_DAYS,
  MAX_FILTER_VALUE_LENGTH,
  MAX_FILTER_VALUES,
  MAX_GROUP_BY,
  MAX_RANGE_DAYS,
  MIN_DATE,
  type Parsed,
  parseActiveUsers,
  parseDimensionValues,
  parseEventCount,
  type RawQuery,
  todayIn,
  WINDOWS,
} from './params.ts';
import { activeUsersRaw } from './raw-query.arbitrary.ts';

const limits: Limits = { maxRangeDays: 400 };
const now = new Date('2025-03-10T23:30:00Z');

function problems<T>(p: Parsed<T>): string[] {
  return p.ok ? [] : p.problems.map((x) => x.message);
}

function ok<T>(p: Parsed<T>): T {
  if (!p.ok) throw new Error(`expected ok, got ${JSON.stringify(p.problems)}`);
  return p.value;
}

describe('parseActiveUsers', () => {
  it('defaults to the last 30 days ending today in UTC, rolling, no group-by, no test or bot users', () => {
    expect(ok(parseActiveUsers({}, limits, now))).toEqual({
      from: '2025-02-09',
      to: '2025-03-10',
      tz: 'UTC',
      filters: {},
      includeTest: false,
      includeBots: false,
      window: 'rolling',
      groupBy: [],
      exact: false,
    });
  });

  it('takes "today" in the requested zone', () => {
    // 23:30 UTC on the 10th is already the 11th in Tokyo.
    expect(ok(parseActiveUsers({ tz: 'Asia/Tokyo' }, limits, now)).to).toBe('2025-03-11');
  });

  it('reads every parameter', () => {
    const q = ok(
      parseActiveUsers(
        {
          from: '2025-01-01',
          to: '2025-01-31',
          tz: 'America/New_York',
          window: 'calendar',
          group_by: 'country,platform',
          country: ['US', 'DE', 'US'],
          feature: 'search',
          include_test: 'true',
          include_bots: '1',
          exact: 'true',
        },
        limits,
        now,
      ),
    );
    expect(q).toEqual({
      from: '2025-01-01',
      to: '2025-01-31',
      tz: 'America/New_York',
      window: 'calendar',
      groupBy: ['country', 'platform'],
      filters: { country: ['US', 'DE'], feature: ['search'] },
      includeTest: true,
      includeBots: true,
      exact: true,
    });
  });

  it('rejects an unknown parameter and lists the valid ones', () => {
    const p = parseActiveUsers({ contry: 'US' }, limits, now);
    expect(p.ok).toBe(false);
    if (p.ok) return;
    expect(p.problems[0]?.param).toBe('contry');
    expect(p.problems[0]?.valid).toEqual(ACTIVE_USERS_PARAMS);
    expect(p.problems[0]?.message).toContain('valid parameters: from, to, tz');
  });

  it('rejects an unknown group-by dimension and lists the valid ones', () => {
    const p = parseActiveUsers({ group_by: 'country,city' }, limits, now);
    expect(p.ok).toBe(false);
    if (p.ok) return;
    expect(p.problems).toHaveLength(1);
    expect(p.problems[0]?.valid).toEqual(DIMENSIONS);
    expect(p.problems[0]?.message).toContain('unknown dimension "city"');
  });

  it.each<[string, RawQuery, string]>([
    ['bad date', { from: '2025-02-30' }, '"from" must be a calendar date YYYY-MM-DD'],
    ['date with time', { to: '2025-02-01T00:00:00Z' }, '"to" must be a calendar date YYYY-MM-DD'],
    ['date out of range', { from: '1970-01-31', to: '1970-02-02' }, 'must be between 1970-02-01'],
    ['from after to', { from: '2025-02-02', to: '2025-02-01' }, 'must not be after "to"'],
    ['range too long', { from: '2020-01-01', to: '2025-01-01' }, 'at most 400 are allowed'],
    ['bad zone', { tz: 'Mars/Olympus' }, '"tz" must be an IANA time zone'],
    ['zone with quote', { tz: "UTC'" }, '"tz" must be an IANA time zone'],
    ['bad window', { window: 'weekly' }, '"window" must be one of rolling, calendar'],
    ['bad boolean', { include_test: 'yes' }, '"include_test" must be true or false'],
    ['bad exact', { exact: 'please' }, '"exact" must be true or false'],
    [
      'exact range too long',
      { exact: 'true', from: '2025-01-01', to: '2025-02-01' },
      'allows at most 31 days (from..to spans 32)',
    ],
    ['repeated scalar', { from: ['2025-01-01', '2025-01-02'] }, '"from" given 2 times'],
    ['too many group-bys', { group_by: 'feature,country,platform,segment' }, 'at most 3 dimensions'],
    ['duplicate group-by', { group_by: 'country,country' }, 'appears twice'],
    ['empty group-by item', { group_by: 'country,' }, 'unknown dimension ""'],
    ['control character', { country: 'U\u0000S' }, 'without control characters'],
    ['overlong value', { country: 'x'.repeat(257) }, 'at most 256 characters'],
    [
      'too many values',
      { country: Array.from({ length: MAX_FILTER_VALUES + 1 }, (_, i) => `c${i}`) },
      'at most 100 values',
    ],
  ])('rejects %s', (_name, raw, message) => {
    expect(problems(parseActiveUsers(raw, limits, now)).join('\n')).toContain(message);
  });

  it('accepts exact=true for 31 days, the default 30-day range included', () => {
    expect(
      ok(parseActiveUsers({ exact: 'true', from: '2025-01-01', to: '2025-01-31' }, limits, now)).exact,
    ).toBe(true);
    expect(ok(parseActiveUsers({ exact: '1' }, limits, now)).exact).toBe(true);
  });

  it('reports every problem at once', () => {
    expect(
      problems(parseActiveUsers({ from: 'x', tz: 'nope', foo: '1', window: 'w' }, limits, now)),
    ).toHaveLength(4);
  });

  it('accepts only what the rules allow, for real parameter names and values near every edge (property)', () => {
    // Tallies, so that the property is seen to reach the rules rather than hold vacuously.
    const seen = { accepted: 0, filtered: 0, grouped: 0, exact: 0, zoned: 0, rejectedValue: 0 };
    const given = (raw: RawQuery, key: string): string[] => {
      const v = raw[key];
      return v === undefined ? [] : typeof v === 'string' ? [v] : [...v];
    };
    fc.assert(
      fc.property(activeUsersRaw, (raw) => {
        const p = parseActiveUsers(raw, limits, now);
        if (!p.ok) {
          expect(p.problems.length).toBeGreaterThan(0);
          if (p.problems.some((x) => (ACTIVE_USERS_PARAMS as readonly string[]).includes(x.param)))
            seen.rejectedValue++;
          return;
        }
        const q = p.value;
        seen.accepted++;
        // Dates: real, in bounds, ordered, within the range limits.
        const [from, to] = [dayNumber(q.from), dayNumber(q.to)];
        expect(from).toBeDefined();
        expect(to).toBeDefined();
        expect(q.from >= MIN_DATE && q.to <= MAX_DATE).toBe(true);
        const span = (to ?? 0) - (from ?? 0) + 1;
        expect(span).toBeGreaterThanOrEqual(1);
        expect(span).toBeLessThanOrEqual(limits.maxRangeDays);
        for (const k of ['from', 'to'] as const) if (given(raw, k)[0]) expect(q[k]).toBe(given(raw, k)[0]);
        // Zone: canonical, and the one asked for.
        expect(canonicalTimeZone(q.tz)).toBe(q.tz);
        const tzRaw = given(raw, 'tz')[0];
        if (tzRaw) {
          expect(canonicalTimeZone(tzRaw)).toBe(q.tz);
          if (q.tz !== 'UTC') seen.zoned++;
        }
        expect(WINDOWS).toContain(q.window);
        // Group-by: allow-listed, distinct, bounded, exactly the names asked for.
        expect(q.groupBy.length).toBeLessThanOrEqual(MAX_GROUP_BY);
        expect(new Set(q.groupBy).size).toBe(q.groupBy.length);
        for (const d of q.groupBy) expect(DIMENSIONS).toContain(d);
        const asked = given(raw, 'group_by')[0];
        expect(q.groupBy).toEqual(asked ? asked.split(',').map((g) => g.trim()) : []);
        if (q.groupBy.length > 0) seen.grouped++;
        // Filters: allow-listed keys that were asked for, 1..MAX values each, short and printable.
        for (const [d, vs] of Object.entries(q.filters)) {
          expect(DIMENSIONS).toContain(d);
          expect(new Set(vs)).toEqual(new Set(given(raw, d)));
          expect(vs?.length).toBeGreaterThan(0);
          expect(vs?.length).toBeLessThanOrEqual(MAX_FILTER_VALUES);
          for (const v of vs ?? []) {
            expect(v.length).toBeLessThanOrEqual(MAX_FILTER_VALUE_LENGTH);
            const control = [...v]
              .map((c) => c.charCodeAt(0))
              .filter((n) => n < 0x20 || (n >= 0x7f && n <= 0x9f));
            expect(control).toEqual([]);
          }
        }
        for (const d of DIMENSIONS) if (raw[d] !== undefined) expect(q.filters[d]).toBeDefined();
        if (Object.keys(q.filters).length > 0) seen.filtered++;
        // Flags: true only for the spellings of true.
        const truthy = (k: string): boolean => ['true', '1'].includes(given(raw, k)[0] ?? '');
        expect(q.includeTest).toBe(truthy('include_test'));
        expect(q.includeBots).toBe(truthy('include_bots'));
        expect(q.exact).toBe(truthy('exact'));
        if (q.exact) {
          expect(span).toBeLessThanOrEqual(MAX_EXACT_RANGE_DAYS);
          seen.exact++;
        }
      }),
      { numRuns: 3_000 },
    );
    for (const [what, n] of Object.entries(seen)) expect(n, what).toBeGreaterThan(20);
  });
});

// Each limit is accepted at its value and refused one past it: StrykerJS found the caps' off-by-one
// mutants (`>` as `>=`) surviving, as the tests above only see values well inside or past them.
describe('limits, at and one past each edge', () => {
  const accepted = (raw: RawQuery, l: Limits = limits): boolean => parseActiveUsers(raw, l, now).ok;
  const values = (n: number): string[] => Array.from({ length: n }, (_, i) => `v${i}`);

  it('group-by dimensions', () => {
    expect(accepted({ group_by: DIMENSIONS.slice(0, MAX_GROUP_BY).join(',') })).toBe(true);
    expect(accepted({ group_by: DIMENSIONS.slice(0, MAX_GROUP_BY + 1).join(',') })).toBe(false);
    // Items are trimmed: "country, platform" names two dimensions.
    expect(ok(parseActiveUsers({ group_by: 'country, platform' }, limits, now)).groupBy).toEqual([
      'country',
      'platform',
    ]);
  });

  it('filter values and their length', () => {
    expect(accepted({ country: values(MAX_FILTER_VALUES) })).toBe(true);
    expect(accepted({ country: values(MAX_FILTER_VALUES + 1) })).toBe(false);
    expect(accepted({ country: 'x'.repeat(MAX_FILTER_VALUE_LENGTH) })).toBe(true);
    expect(accepted({ country: 'x'.repeat(MAX_FILTER_VALUE_LENGTH + 1) })).toBe(false);
  });

  it('dates and ranges: the first and last dates, one day, the configured and the absolute maximum', () => {
    expect(accepted({ from: MIN_DATE, to: MIN_DATE })).toBe(true);
    expect(accepted({ from: MAX_DATE, to: MAX_DATE })).toBe(true);
    expect(accepted({ from: '1970-01-31', to: '1970-01-31' })).toBe(false);
    expect(accepted({ from: '2025-01-01', to: '2025-01-01' })).toBe(true);
    const span = (days: number): RawQuery => ({
      from: '2024-01-01',
      to: new Date(Date.UTC(2024, 0, days)).toISOString().slice(0, 10),
    });
    expect(accepted(span(limits.maxRangeDays))).toBe(true);
    expect(accepted(span(limits.maxRangeDays + 1))).toBe(false);
    // A configured limit below the absolute one is the one applied, and never one above it.
    expect(accepted(span(10), { maxRangeDays: 10 })).toBe(true);
    expect(accepted(span(11), { maxRangeDays: 10 })).toBe(false);
    expect(accepted(span(MAX_RANGE_DAYS + 1), { maxRangeDays: MAX_RANGE_DAYS + 100 })).toBe(false);
  });

  it('one date given: the 30 days from it, or up to it', () => {
    expect(ok(parseActiveUsers({ from: '2025-01-01' }, limits, now))).toMatchObject({
      from: '2025-01-01',
      to: '2025-01-30',
    });
    expect(ok(parseActiveUsers({ from: '2099-12-20' }, limits, now)).to).toBe(MAX_DATE);
    expect(ok(parseActiveUsers({ to: '2025-01-30' }, limits, now)).from).toBe('2025-01-01');
  });

  it('the dimension-values limit', () => {
    const limit = (v: string) => parseDimensionValues('country', { limit: v }, limits, now);
    expect(ok(limit('1')).limit).toBe(1);
    expect(ok(limit(String(MAX_DIMENSION_VALUES))).limit).toBe(MAX_DIMENSION_VALUES);
    expect(limit(String(MAX_DIMENSION_VALUES + 1)).ok).toBe(false);
    expect(limit('0').ok).toBe(false);
  });

  it('the spellings of false, and an empty value as absent', () => {
    for (const v of ['false', '0', ''])
      expect(ok(parseActiveUsers({ include_test: v }, limits, now)).includeTest).toBe(false);
    expect(ok(parseActiveUsers({ tz: '', window: '', from: '', group_by: '' }, limits, now))).toMatchObject({
      tz: 'UTC',
      window: 'rolling',
      from: '2025-02-09',
      groupBy: [],
    });
    expect(ok(parseDimensionValues('country', { limit: '' }, limits, now)).limit).toBe(200);
  });

  it('dates only in full: nothing before or after YYYY-MM-DD, and no year below 1000 read as 19xx', () => {
    expect(dayNumber('x2025-01-01')).toBeUndefined();
    expect(dayNumber('0050-01-01')).toBeUndefined();
    expect(dayNumber('2023-04-31')).toBeUndefined();
  });
});

describe('parseEventCount', () => {
  it('does not take window', () => {
    expect(problems(parseEventCount({ window: 'rolling' }, limits, now))).toHaveLength(1);
    expect(ok(parseEventCount({ group_by: 'feature' }, limits, now)).groupBy).toEqual(['feature']);
  });
});

describe('parseDimensionValues', () => {
  it('rejects an unknown dimension and lists the valid ones', () => {
    const p = parseDimensionValues('city', {}, limits, now);
    expect(p.ok).toBe(false);
    if (p.ok) return;
    expect(p.problems[0]?.valid).toEqual(DIMENSIONS);
  });

  it('reads limit within bounds', () => {
    expect(ok(parseDimensionValues('country', { limit: '5' }, limits, now)).limit).toBe(5);
    expect(problems(parseDimensionValues('country', { limit: '0' }, limits, now))).toHaveLength(1);
    expect(problems(parseDimensionValues('country', { limit: '1e3' }, limits, now))).toHaveLength(1);
  });
});

describe('dates and zones', () => {
  it('validates calendar dates', () => {
    expect(dayNumber('2024-02-29')).toBe(19782);
    expect(dayNumber('2023-02-29')).toBeUndefined();
    expect(dayNumber('2023-2-01')).toBeUndefined();
  });

  it('knows IANA zones and spells them canonically', () => {
    expect(canonicalTimeZone('UTC')).toBe('UTC');
    expect(canonicalTimeZone('utc')).toBe('UTC');
    expect(canonicalTimeZone('europe/berlin')).toBe('Europe/Berlin');
    // ICU's canonical id of a zone with a renamed IANA name is the older one: both are in tzdata.
    expect(canonicalTimeZone('asia/kolkata')).toBe('Asia/Calcutta');
    expect(canonicalTimeZone('Asia/Kolkata; DROP TABLE x')).toBeUndefined();
    expect(canonicalTimeZone('Mars/Olympus')).toBeUndefined();
    const p = parseActiveUsers({ tz: 'america/new_york' }, limits, now);
    expect(p.ok && p.value.tz).toBe('America/New_York');
    expect(todayIn('Pacific/Kiritimati', new Date('2025-01-01T10:00:00Z'))).toBe('2025-01-02');
  });
});
