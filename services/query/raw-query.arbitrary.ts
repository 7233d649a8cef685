/**
 * Test fixture (imported by params.test.ts and sql/builder.test.ts only): random /v1/active-users
 * query strings that use the real parameter names with values near every rule's edge, good and
 * bad, so property tests exercise the validator's rules instead of its unknown-key check (keys
 * drawn from arbitrary strings almost never name a parameter).
 */
import fc from 'fast-check';
import { DIMENSIONS, dateOfDay, dayNumber, type RawQuery } from './params.ts';

/** Mostly good values, sometimes a bad one: a request with one bad value is the interesting case. */
const mostly = <T>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<T>): fc.Arbitrary<T> =>
  fc.oneof({ weight: 12, arbitrary: good }, { weight: 1, arbitrary: bad });

const badDate = fc.constantFrom(
  '1970-01-31',
  '2100-01-01',
  '2025-02-30',
  '2025-1-01',
  '2025-02-01T00:00:00Z',
  'x',
);

/** from..to: usually a range ending in early 2025, from a few days (exact mode) to over the range limit. */
const range = fc
  .tuple(
    fc.integer({ min: dayNumber('2024-06-01') ?? 0, max: dayNumber('2025-03-10') ?? 0 }),
    fc.oneof(fc.integer({ min: -2, max: 40 }), fc.integer({ min: 0, max: 420 })),
    fc.constantFrom('1970-02-01', '2099-12-31'),
  )
  .chain(([to, days, edge]) =>
    fc.constantFrom<[string, string]>(
      [dateOfDay(to - days), dateOfDay(to)],
      // The accepted extremes, alone or as one end of a range.
      edge === '1970-02-01'
        ? [edge, dateOfDay((dayNumber(edge) ?? 0) + Math.abs(days))]
        : [dateOfDay((dayNumber(edge) ?? 0) - Math.abs(days)), edge],
    ),
  );

const tz = mostly(
  fc.constantFrom(
    'UTC',
    'utc',
    'Europe/Berlin',
    'europe/berlin',
    'Asia/Kolkata',
    'Asia/Kathmandu',
    'America/St_Johns',
    'Pacific/Kiritimati',
    'Etc/GMT+5',
    '',
  ),
  fc.oneof(
    fc.constantFrom('Mars/Olympus', "UTC'", 'Europe/Berlin; DROP TABLE x', 'Europe/Berlin\n'),
    fc.string({ maxLength: 12 }),
  ),
);

const bool = mostly(fc.constantFrom('true', 'false', '1', '0', ''), fc.constantFrom('yes', 'TRUE', 'on'));

const groupName = mostly(fc.constantFrom(...DIMENSIONS), fc.constantFrom('city', '', ' country'));
const groupBy = mostly(
  fc.array(groupName, { minLength: 1, maxLength: 3 }),
  fc.array(groupName, { minLength: 4, maxLength: 4 }),
).map((names) => names.join(','));

const value = mostly(
  fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('US', 'DE', 'ios', 'pro', '', 'x'.repeat(256)) },
    { weight: 2, arbitrary: fc.string({ maxLength: 8 }) },
    { weight: 1, arbitrary: fc.constantFrom("x' OR 1=1 OR 'a'='a", "\\'; DROP TABLE x; --", 'é漢字🙂') },
  ),
  fc.constantFrom('U\u0000S', 'tab\there', '\u0085', 'x'.repeat(257)),
);

const values = fc.oneof(
  { weight: 6, arbitrary: value },
  { weight: 3, arbitrary: fc.array(value, { minLength: 2, maxLength: 4 }) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 99, max: 101 }).map((n) => Array.from({ length: n }, (_, i) => `v${i}`)),
  },
);

/** A scalar parameter, now and then repeated (a 400 of its own). */
const scalar = (a: fc.Arbitrary<string>): fc.Arbitrary<string | string[]> =>
  fc.oneof(
    { weight: 30, arbitrary: a },
    { weight: 1, arbitrary: fc.array(a, { minLength: 2, maxLength: 2 }) },
  );

/** Query strings of /v1/active-users: each real parameter present or not, and now and then an unknown one. */
export const activeUsersRaw: fc.Arbitrary<RawQuery> = fc
  .tuple(
    range,
    fc.record(
      {
        from: mostly(fc.constant(null), badDate),
        to: mostly(fc.constant(null), badDate),
        tz: scalar(tz),
        window: scalar(
          mostly(fc.constantFrom('rolling', 'calendar', ''), fc.constantFrom('weekly', 'ROLLING')),
        ),
        group_by: scalar(groupBy),
        exact: scalar(bool),
        include_test: scalar(bool),
        include_bots: scalar(bool),
      },
      { requiredKeys: [] },
    ),
    fc.dictionary(fc.constantFrom(...DIMENSIONS), values, { maxKeys: 3 }),
    mostly(fc.constant(null), fc.constantFrom('contry', 'limit', 'group-by', 'from ')),
  )
  .map(([[from, to], { from: badFrom, to: badTo, ...params }, filters, unknown]) => ({
    // Each end given (the range's, or now and then a bad date) or left to its default.
    ...(badFrom === undefined ? {} : { from: badFrom ?? from }),
    ...(badTo === undefined ? {} : { to: badTo ?? to }),
    ...params,
    ...filters,
    ...(unknown === null ? {} : { [unknown]: '1' }),
  }));
