import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { offsetFormat } from '../../lib/finished-days.ts';
import { parseActiveUsers } from '../params.ts';
import { activeUsersRaw } from '../raw-query.arbitrary.ts';
import {
  buildActiveUsersQuery,
  buildDimensionValuesQuery,
  buildEventCountsQuery,
  buildGroupCountQuery,
  isWholeHourZone,
  quoteString,
} from './builder.ts';

const base = { from: '2024-03-01', to: '2024-03-07', tz: 'UTC', window: 'rolling' as const };

/**
 * The SQL with every run of whitespace as one space: the assertions below pin what the query reads
 * and bounds, not its layout. Its results are checked against exact truth on the real ClickHouse
 * (test/integration/query-exact.test.ts, query-api.test.ts, datamodel.test.ts).
 */
const flat = (sql: string): string => sql.replace(/\s+/g, ' ');

/** Unescapes a ClickHouse string literal the way the server's lexer does. */
function unquote(lit: string): string {
  expect(lit.startsWith("'") && lit.endsWith("'")).toBe(true);
  const body = lit.slice(1, -1);
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as string;
    if (c === "'") throw new Error(`unescaped quote at ${i}`);
    if (c !== '\\') {
      out += c;
      continue;
    }
    const n = body[++i] as string;
    out += ({ n: '\n', r: '\r', t: '\t', '0': '\0', b: '\b', f: '\f' } as Record<string, string>)[n] ?? n;
  }
  return out;
}

/**
 * Fails when `sql` with its string literals removed holds anything but builder text: a statement
 * separator, a comment, a keyword the builder never writes, or a UNION beyond the builder's own
 * (window and new-user branches, each joined as a line of its own).
 */
function expectOnlyBuilderCode(sql: string): void {
  const code = sql.replace(/'(?:[^'\\]|\\.)*'/g, "''");
  expect(code).not.toMatch(/;|--|\/\*|DROP|FORMAT|system\./i);
  const unions = code.match(/UNION/gi) ?? [];
  expect(unions.length).toBeGreaterThan(0);
  expect(code.match(/\n {2}UNION ALL\n {2}SELECT /g)).toHaveLength(unions.length);
}

const INJECTIONS = [
  "'; DROP TABLE fact_user_activity; --",
  "\\'; DROP DATABASE analytics; --",
  "x' OR 1=1 OR 'a'='a",
  'x\\',
  "\\\\' UNION ALL SELECT * FROM system.users --",
  "a'/*",
  "\0'\n) FORMAT TSV",
  '`backtick`',
  '" OR ""="',
  "é'漢字'🙂",
];

describe('quoteString', () => {
  it('round-trips any string and never lets a quote end the literal', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary' }), (s) => unquote(quoteString(s)) === s));
    for (const s of INJECTIONS) expect(unquote(quoteString(s))).toBe(s);
  });
});

describe('buildActiveUsersQuery', () => {
  it('reads the smallest rollup that covers the filters and group-bys', () => {
    expect(buildActiveUsersQuery(base).source).toBe('rollup_users_hourly_total');
    expect(buildActiveUsersQuery({ ...base, groupBy: ['feature'] }).source).toBe(
      'rollup_users_hourly_feature',
    );
    expect(
      buildActiveUsersQuery({ ...base, filters: { country: ['DE'] }, groupBy: ['feature'] }).source,
    ).toBe('rollup_users_hourly_slice');
  });

  it('excludes test accounts and bots unless asked', () => {
    expect(buildActiveUsersQuery(base).sql).toContain('is_test_account = 0 AND is_bot = 0');
    const all = buildActiveUsersQuery({ ...base, includeTest: true, includeBots: true }).sql;
    expect(all).not.toContain('is_test_account = 0');
    expect(all).not.toContain('is_bot = 0');
  });

  it('falls back to the fact table for zones whose offset is not whole hours', () => {
    expect(buildActiveUsersQuery({ ...base, tz: 'Europe/Berlin' }).fromRollup).toBe(true);
    const india = buildActiveUsersQuery({ ...base, tz: 'Asia/Kolkata' });
    expect(india.fromRollup).toBe(false);
    expect(india.source).toBe('fact_user_activity');
    expect(isWholeHourZone('Asia/Kathmandu', 0, 86_400_000)).toBe(false);
    expect(isWholeHourZone('America/New_York', Date.UTC(2024, 0, 1), Date.UTC(2024, 11, 31))).toBe(true);
  });

  it('builds one offset formatter per zone, not one per sampled instant', () => {
    expect(offsetFormat('Europe/Berlin')).toBe(offsetFormat('Europe/Berlin'));
    expect(offsetFormat('Europe/Berlin')).not.toBe(offsetFormat('Asia/Kolkata'));
    expect(offsetFormat('Not/AZone')).toBeNull();
    expect(isWholeHourZone('Not/AZone', 0, 86_400_000)).toBe(false);
  });

  it('uses calendar week and month conditions for the calendar window', () => {
    const sql = flat(buildActiveUsersQuery({ ...base, window: 'calendar' }).sql);
    expect(sql).toContain('blk_start >= toMonday(day)');
    expect(sql).toContain('blk_start >= toStartOfMonth(day)');
    expect(sql).not.toContain('day - 29');
  });

  it('writes no identifier off its allow-list, whatever a cast let into a typed field', () => {
    for (const req of [
      { ...base, filters: { 'country; DROP': ['x'] } },
      { ...base, groupBy: ['1; DROP TABLE x'] },
      { ...base, groupBy: ['country', 'city'] },
    ]) {
      expect(() => buildActiveUsersQuery(req as never)).toThrow(/QUERY_UNSAFE_SQL|not a dimension/);
    }
    expect(() => buildActiveUsersQuery({ ...base, from: "2024-03-01' OR 1" })).toThrow('not a day');
  });

  it('splits a group-by into window branches of disjoint days and new users into user_key ranges', () => {
    const ninety = { ...base, from: '2024-03-01', to: '2024-05-29' };
    const days = (sql: string): string[] =>
      [...sql.matchAll(/WHERE day >= toDate\('([\d-]+)'\) AND day <= toDate\('([\d-]+)'\)/g)].map(
        (m) => `${m[1]}..${m[2]}`,
      );
    const grouped = buildActiveUsersQuery({ ...ninety, groupBy: ['platform', 'country'] }).sql;
    expect(days(grouped)).toEqual([
      '2024-03-01..2024-03-15',
      '2024-03-16..2024-03-30',
      '2024-03-31..2024-04-14',
      '2024-04-15..2024-04-29',
      '2024-04-30..2024-05-14',
      '2024-05-15..2024-05-29',
    ]);
    // Each branch reads its own days and their 30-day look-back only.
    expect(grouped).toContain(
      "hour >= toDateTime('2024-02-15 00:00:00', 'UTC') AND hour < toDateTime('2024-03-31 00:00:00', 'UTC')",
    );
    // Without groups, or on the facts (exact, zones off the whole hour): one branch.
    for (const req of [
      ninety,
      { ...ninety, groupBy: ['platform' as const], exact: true },
      { ...ninety, groupBy: ['platform' as const], tz: 'Asia/Kolkata' },
    ])
      expect(days(buildActiveUsersQuery(req).sql)).toEqual(['2024-03-01..2024-05-29']);
    const ranges = [...grouped.matchAll(/WHERE (user_key [^\n]*?)is_test_account/g)].map((m) => m[1]);
    expect(ranges).toHaveLength(8);
    expect(ranges[0]).toBe('user_key < 2305843009213693952 AND ');
    expect(ranges[1]).toBe('user_key >= 2305843009213693952 AND user_key < 4611686018427387904 AND ');
    expect(ranges[7]).toBe('user_key >= 16140901064495857664 AND ');
    expect(grouped.match(/FROM rollup_user_first_seen/g)).toHaveLength(8);
  });

  it('keeps a zone name inside its literal (zones are validated in params.ts, not here)', () => {
    const tz = "UTC'); DROP TABLE x; --";
    const sql = buildActiveUsersQuery({ ...base, tz }).sql;
    expect(sql).toContain(quoteString(tz));
    expectOnlyBuilderCode(sql);
  });

  it('keeps every injection attempt inside string literals', () => {
    for (const s of INJECTIONS) {
      const sql = buildActiveUsersQuery({ ...base, filters: { country: [s], feature: [s, 'ok'] } }).sql;
      expect(sql).toContain(`country IN (${quoteString(s)})`);
      expectOnlyBuilderCode(sql);
    }
  });
});

describe('buildActiveUsersQuery with exact: true', () => {
  const exact = { ...base, exact: true };

  it('counts uniqExact users over the facts, one row per event, in any zone', () => {
    for (const tz of ['UTC', 'Europe/Berlin', 'Asia/Kolkata']) {
      const b = buildActiveUsersQuery({ ...exact, tz });
      expect(b.source).toBe('fact_user_activity');
      expect(b.fromRollup).toBe(false);
      expect(b.sql).toContain('uniqExactState(user_key)');
      expect(b.sql).toContain('uniqExactMergeState(users) AS blk');
      expect(b.sql).toContain('uniqExactMergeIf(blk, len = 1 AND k = 0)');
      expect(b.sql).toContain('LIMIT 1 BY event_id');
      expect(b.sql).not.toMatch(/\buniq(State|MergeState|MergeIf)\(/);
      expect(b.sql).not.toContain('rollup_users_hourly');
    }
  });

  it('scans range + 29 days of facts, bounded on the sorting key too', () => {
    const sql = flat(
      buildActiveUsersQuery({ ...exact, groupBy: ['platform'], filters: { country: ['DE'] } }).sql,
    );
    // 2024-03-01 minus the 30-day lookback is 2024-01-31; date_key widens by a day for the zone.
    expect(sql).toContain("activity_timestamp >= toDateTime('2024-01-31 00:00:00', 'UTC')");
    expect(sql).toContain("activity_timestamp < toDateTime('2024-03-08 00:00:00', 'UTC')");
    expect(sql).toContain('date_key >= 20240130 AND date_key <= 20240308');
    expect(sql).toContain('SELECT user_key, activity_timestamp, platform FROM fact_user_activity');
    expect(sql).toContain("is_test_account = 0 AND is_bot = 0 AND country IN ('DE')");
  });

  it('takes new users from the same first-seen minimums as the rollup path', () => {
    const newUsers = (sql: string): string => sql.slice(sql.indexOf('UNION ALL'));
    for (const req of [base, { ...base, tz: 'Asia/Kathmandu', groupBy: ['feature' as const] }]) {
      expect(newUsers(buildActiveUsersQuery({ ...req, exact: true }).sql)).toBe(
        newUsers(buildActiveUsersQuery(req).sql),
      );
    }
  });

  it('keeps every injection attempt inside string literals', () => {
    for (const s of INJECTIONS) {
      const sql = buildActiveUsersQuery({ ...exact, filters: { country: [s] }, groupBy: ['segment'] }).sql;
      expectOnlyBuilderCode(sql);
    }
  });
});

describe('buildEventCountsQuery and buildDimensionValuesQuery', () => {
  it('counts distinct event ids from the facts', () => {
    const sql = flat(buildEventCountsQuery({ ...base, groupBy: ['platform'] }).sql);
    expect(sql).toContain('uniqExact(event_id)');
    expect(sql).toContain('GROUP BY day, platform');
  });

  it('lists a dimension from a rollup that has it, and writes only a positive integer as the limit', () => {
    const b = buildDimensionValuesQuery({ ...base, dimension: 'activity_type', limit: 5 });
    expect(b.source).toBe('rollup_users_hourly_feature');
    expect(flat(b.sql)).toContain('LIMIT 5');
    expect(flat(buildDimensionValuesQuery({ ...base, dimension: 'country', limit: 1 }).sql)).toContain(
      'LIMIT 1',
    );
    expect(() => buildDimensionValuesQuery({ ...base, dimension: 'city' as never, limit: 5 })).toThrow(
      'not a dimension',
    );
    for (const limit of [0, 1.5, Number.NaN, Number.POSITIVE_INFINITY])
      expect(() => buildDimensionValuesQuery({ ...base, dimension: 'country', limit })).toThrow('limit');
  });
});

describe('every request params.ts accepts', () => {
  it('builds, with user text only inside literals (property)', () => {
    const now = new Date('2025-03-10T23:30:00Z');
    let built = 0;
    fc.assert(
      fc.property(activeUsersRaw, (raw) => {
        const p = parseActiveUsers(raw, { maxRangeDays: 400 }, now);
        if (!p.ok) return;
        const q = p.value;
        built++;
        const users = buildActiveUsersQuery(q).sql;
        expectOnlyBuilderCode(users);
        for (const [d, vs] of Object.entries(q.filters))
          expect(users).toContain(`${d} IN (${(vs ?? []).map(quoteString).join(', ')})`);
        const code = (sql: string): string => sql.replace(/'(?:[^'\\]|\\.)*'/g, "''");
        for (const sql of [
          buildEventCountsQuery(q).sql,
          buildDimensionValuesQuery({ ...q, dimension: 'country', limit: 1000 }).sql,
          ...(q.groupBy.length > 0 ? [buildGroupCountQuery(q).sql] : []),
        ])
          expect(code(sql)).not.toMatch(/;|--|\/\*|DROP|FORMAT|UNION|system\./i);
      }),
      { numRuns: 1_000 },
    );
    expect(built).toBeGreaterThan(100);
  });
});
