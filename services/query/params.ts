/**
 * The query service's one validation pass: HTTP query strings in, validated requests out. Every
 * rule about what a request may ask (dates, range lengths, zones, dimensions, value counts and
 * lengths, limits) lives here and nowhere else; the SQL builder (./sql/builder.ts) takes these
 * types and trusts them, checking only its own SQL safety. Pure: no I/O, no clock (today's date is
 * passed in), so every rule is unit-tested. Every problem in a request is reported at once, and a
 * 400 for an unknown parameter or dimension lists the valid names, so a caller fixes a request in
 * one go.
 */

import { canonicalTimeZone, localDay } from '../lib/finished-days.ts';
import { DAY_MS } from '../lib/time.ts';

/**
 * Slice dimensions, named as the API exposes them; equal to the rollup and fact column names, so
 * this list is also the builder's allow-list of identifiers.
 */
export const DIMENSIONS = [
  'feature',
  'feature_category',
  'activity_type',
  'device_type',
  'platform',
  'app_version',
  'continent',
  'country',
  'region',
  'segment',
  'gender',
  'age_band',
] as const;
export type Dimension = (typeof DIMENSIONS)[number];

/** Longest from..to span any deployment may allow (QUERY_MAX_RANGE_DAYS is at most this). */
export const MAX_RANGE_DAYS = 400;
/**
 * Longest range of an exact query: it scans the facts of the range and its look-back and keeps one
 * row per event in memory to deduplicate, so its cost grows with events, not with sketches.
 */
export const MAX_EXACT_RANGE_DAYS = 31;
export const MAX_GROUP_BY = 3;
export const MAX_FILTER_VALUES = 100;
export const MAX_FILTER_VALUE_LENGTH = 256;
export const DEFAULT_DIMENSION_VALUES = 200;
export const MAX_DIMENSION_VALUES = 1000;
export const DEFAULT_RANGE_DAYS = 30;
/**
 * ClickHouse's Date and DateTime start at 1970-01-01 and end in 2105/2106; the builder reads 30 days
 * before `from` (the windows' look-back) and up to the midnight after `to`, so the accepted days
 * keep a month of margin at the start and a few years at the end.
 */
export const MIN_DATE = '1970-02-01';
export const MAX_DATE = '2099-12-31';

export type Filters = Readonly<Partial<Record<Dimension, readonly string[]>>>;

export const WINDOWS = ['rolling', 'calendar'] as const;
export type Window = (typeof WINDOWS)[number];

export interface SliceQuery {
  /** First day, YYYY-MM-DD, a calendar day in `tz`. */
  readonly from: string;
  /** Last day (inclusive), YYYY-MM-DD. */
  readonly to: string;
  /** Canonical IANA zone name whose days the result uses. */
  readonly tz: string;
  /** Keep rows whose dimension is one of the values ('' = unknown); dimensions are ANDed. */
  readonly filters: Filters;
  /** Test accounts are excluded unless true. */
  readonly includeTest: boolean;
  /** Events flagged as bots are excluded unless true. */
  readonly includeBots: boolean;
}

export interface ActiveUsersQuery extends SliceQuery {
  /**
   * rolling: wau = distinct users in [d-6, d], mau = [d-29, d].
   * calendar: wau = ISO week to date (Monday..d), mau = month to date (1st..d); the full-period
   * value is the one on the period's last day.
   */
  readonly window: Window;
  /** One result row per day and combination of these dimensions' values. */
  readonly groupBy: readonly Dimension[];
  /** Exact counts from a scan of the facts (ranges of at most MAX_EXACT_RANGE_DAYS days). */
  readonly exact: boolean;
}

export interface EventCountQuery extends SliceQuery {
  readonly groupBy: readonly Dimension[];
}

export interface DimensionValuesQuery extends SliceQuery {
  readonly dimension: Dimension;
  readonly limit: number;
}

export interface Limits {
  /** Longest accepted from..to span, in days (inclusive); at most MAX_RANGE_DAYS. */
  readonly maxRangeDays: number;
}

/** One problem with a request; `valid` lists the accepted names when a name was not one of them. */
export interface ParamProblem {
  readonly param: string;
  readonly message: string;
  readonly valid?: readonly string[];
}

export type Parsed<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly problems: readonly ParamProblem[] };

/** Fastify's query parser yields a string per key, or an array when the key repeats. */
export type RawQuery = Readonly<Record<string, string | readonly string[] | undefined>>;

const SLICE_PARAMS = ['from', 'to', 'tz', 'include_test', 'include_bots'] as const;
export const ACTIVE_USERS_PARAMS = [...SLICE_PARAMS, 'window', 'group_by', 'exact', ...DIMENSIONS] as const;
export const EVENT_COUNT_PARAMS = [...SLICE_PARAMS, 'group_by', ...DIMENSIONS] as const;
export const DIMENSION_VALUES_PARAMS = [...SLICE_PARAMS, 'limit', ...DIMENSIONS] as const;

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
// C0/C1 controls never occur in real dimension values; refusing them keeps logs and SQL plain.
// biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to match control characters
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;

export function isDimension(name: string): name is Dimension {
  return (DIMENSIONS as readonly string[]).includes(name);
}

/** Days since the epoch of a YYYY-MM-DD calendar date, or undefined if it is not a real date. */
export function dayNumber(date: string): number | undefined {
  const m = DATE_RE.exec(date);
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const t = Date.UTC(y, mo - 1, d);
  const back = new Date(t);
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d)
    return undefined;
  return t / DAY_MS;
}

export function dateOfDay(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

/** Today's calendar date in `tz` (a zone already validated). */
export const todayIn = (tz: string, now: Date): string => localDay(now.getTime(), tz);

class Reader {
  readonly problems: ParamProblem[] = [];
  readonly raw: RawQuery;

  constructor(raw: RawQuery, allowed: readonly string[]) {
    this.raw = raw;
    for (const key of Object.keys(raw)) {
      if (!allowed.includes(key)) {
        this.problems.push({
          param: key,
          message: `unknown parameter "${key}"; valid parameters: ${allowed.join(', ')}`,
          valid: allowed,
        });
      }
    }
  }

  fail(param: string, message: string, valid?: readonly string[]): void {
    this.problems.push(valid === undefined ? { param, message } : { param, message, valid });
  }

  /** A parameter that may appear at most once. */
  single(name: string): string | undefined {
    const v = this.raw[name];
    if (v === undefined) return undefined;
    if (typeof v === 'string') return v;
    this.fail(name, `"${name}" given ${v.length} times; give it once`);
    return undefined;
  }

  bool(name: string): boolean {
    const v = this.single(name);
    if (v === undefined || v === '') return false;
    if (v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
    this.fail(name, `"${name}" must be true or false`);
    return false;
  }

  oneOf<T extends string>(name: string, values: readonly T[], fallback: T): T {
    const v = this.single(name);
    if (v === undefined || v === '') return fallback;
    if ((values as readonly string[]).includes(v)) return v as T;
    this.fail(name, `"${name}" must be one of ${values.join(', ')}`, values);
    return fallback;
  }

  int(name: string, min: number, max: number, fallback: number): number {
    const v = this.single(name);
    if (v === undefined || v === '') return fallback;
    if (!/^\d{1,9}$/.test(v) || Number(v) < min || Number(v) > max) {
      this.fail(name, `"${name}" must be an integer in [${min}, ${max}]`);
      return fallback;
    }
    return Number(v);
  }

  date(name: string): string | undefined {
    const v = this.single(name);
    if (v === undefined || v === '') return undefined;
    if (dayNumber(v) === undefined) {
      this.fail(name, `"${name}" must be a calendar date YYYY-MM-DD`);
      return undefined;
    }
    if (v < MIN_DATE || v > MAX_DATE) {
      this.fail(name, `"${name}" must be between ${MIN_DATE} and ${MAX_DATE}`);
      return undefined;
    }
    return v;
  }

  groupBy(): Dimension[] {
    const v = this.single('group_by');
    if (v === undefined || v === '') return [];
    const names = v.split(',').map((s) => s.trim());
    const out: Dimension[] = [];
    for (const name of names) {
      if (!isDimension(name)) {
        this.fail(
          'group_by',
          `unknown dimension "${name}" in group_by; valid dimensions: ${DIMENSIONS.join(', ')}`,
          DIMENSIONS,
        );
      } else if (out.includes(name)) {
        this.fail('group_by', `dimension "${name}" appears twice in group_by`);
      } else {
        out.push(name);
      }
    }
    if (names.length > MAX_GROUP_BY) {
      this.fail('group_by', `group_by takes at most ${MAX_GROUP_BY} dimensions (got ${names.length})`);
    }
    return out;
  }

  filters(): Filters {
    const out: Partial<Record<Dimension, readonly string[]>> = {};
    for (const dim of DIMENSIONS) {
      const v = this.raw[dim];
      if (v === undefined) continue;
      const values = typeof v === 'string' ? [v] : [...v];
      if (values.length > MAX_FILTER_VALUES) {
        this.fail(dim, `"${dim}" takes at most ${MAX_FILTER_VALUES} values (got ${values.length})`);
        continue;
      }
      const bad = values.find((s) => s.length > MAX_FILTER_VALUE_LENGTH || CONTROL_RE.test(s));
      if (bad !== undefined) {
        this.fail(
          dim,
          `"${dim}" values must be at most ${MAX_FILTER_VALUE_LENGTH} characters without control characters`,
        );
        continue;
      }
      out[dim] = [...new Set(values)];
    }
    return out;
  }
}

function readSlice(r: Reader, limits: Limits, now: Date): SliceQuery {
  const tzRaw = r.single('tz');
  let tz = 'UTC';
  if (tzRaw !== undefined && tzRaw !== '') {
    // Canonical (`europe/berlin` -> `Europe/Berlin`): ClickHouse knows only that spelling, and
    // finished numbers are keyed by it.
    const canonical = canonicalTimeZone(tzRaw);
    if (canonical !== undefined) tz = canonical;
    else r.fail('tz', `"tz" must be an IANA time zone such as UTC, Europe/Berlin or America/New_York`);
  }
  const fromRaw = r.date('from');
  const toRaw = r.date('to');
  // Defaults: the last 30 days ending today in the reporting zone, or around the one date given.
  const to =
    toRaw ??
    (fromRaw === undefined
      ? todayIn(tz, now)
      : dateOfDay(Math.min((dayNumber(fromRaw) ?? 0) + DEFAULT_RANGE_DAYS - 1, dayNumber(MAX_DATE) ?? 0)));
  const from =
    fromRaw ?? dateOfDay(Math.max((dayNumber(to) ?? 0) - DEFAULT_RANGE_DAYS + 1, dayNumber(MIN_DATE) ?? 0));
  const span = (dayNumber(to) ?? 0) - (dayNumber(from) ?? 0) + 1;
  const maxSpan = Math.min(limits.maxRangeDays, MAX_RANGE_DAYS);
  if (span < 1) r.fail('from', `"from" (${from}) must not be after "to" (${to})`);
  else if (span > maxSpan) r.fail('to', `from..to spans ${span} days; at most ${maxSpan} are allowed`);
  return {
    from,
    to,
    tz,
    filters: r.filters(),
    includeTest: r.bool('include_test'),
    includeBots: r.bool('include_bots'),
  };
}

function done<T>(r: Reader, value: T): Parsed<T> {
  return r.problems.length === 0 ? { ok: true, value } : { ok: false, problems: r.problems };
}

export function parseActiveUsers(raw: RawQuery, limits: Limits, now: Date): Parsed<ActiveUsersQuery> {
  const r = new Reader(raw, ACTIVE_USERS_PARAMS);
  const slice = readSlice(r, limits, now);
  const exact = r.bool('exact');
  const span = (dayNumber(slice.to) ?? 0) - (dayNumber(slice.from) ?? 0) + 1;
  if (exact && span > MAX_EXACT_RANGE_DAYS) {
    r.fail(
      'exact',
      `exact=true scans the raw events and allows at most ${MAX_EXACT_RANGE_DAYS} days (from..to spans ${span}); narrow the range or drop exact`,
    );
  }
  return done(r, {
    ...slice,
    window: r.oneOf('window', WINDOWS, 'rolling'),
    groupBy: r.groupBy(),
    exact,
  });
}

export function parseEventCount(raw: RawQuery, limits: Limits, now: Date): Parsed<EventCountQuery> {
  const r = new Reader(raw, EVENT_COUNT_PARAMS);
  const slice = readSlice(r, limits, now);
  return done(r, { ...slice, groupBy: r.groupBy() });
}

export function parseDimensionValues(
  name: string,
  raw: RawQuery,
  limits: Limits,
  now: Date,
): Parsed<DimensionValuesQuery> {
  const r = new Reader(raw, DIMENSION_VALUES_PARAMS);
  if (!isDimension(name)) {
    r.fail('name', `unknown dimension "${name}"; valid dimensions: ${DIMENSIONS.join(', ')}`, DIMENSIONS);
  }
  const slice = readSlice(r, limits, now);
  const limit = r.int('limit', 1, MAX_DIMENSION_VALUES, DEFAULT_DIMENSION_VALUES);
  return done(r, { ...slice, dimension: name as Dimension, limit });
}
