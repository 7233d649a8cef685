/**
 * Which local days have finished active-user numbers that are still current, and which must be
 * computed (again): the rules the refresher (services/refresher/) and the query API share, pure so
 * both sides agree by construction (clickhouse/migrations/0012_finished_active_users.sql has the
 * tables).
 *
 * A day is a calendar day in a reporting time zone, written YYYY-MM-DD. Activity in UTC hour h
 * changes the DAU of the local days h overlaps and the WAU / MAU of the 30 days after them (29 for
 * rolling windows, 30 for a calendar month to date). Every insert marks its hours with the time it was written
 * (`marked_at`); finished numbers carry the time their computation saw everything written before
 * (`computed_at`). A finished day is current while no hour that affects it has a mark at or after
 * its computed_at; the refresher computes a closed day (before today in its zone) that has no
 * numbers yet or is no longer current.
 */

import { quoteString } from './sql.ts';
import { DAY_MS, HOUR_MS } from './time.ts';

/** A day's MAU window: the day and the 29 before it. */
export const WINDOW_DAYS = 30;
/**
 * How far activity reaches forward: a day's answer depends on activity up to 30 days before it
 * (rolling MAU: 29; calendar month to date: 30, on the 31st), so an hour affects its days and the
 * 30 after them. Finished numbers (rolling) need 29; the query cache also keeps calendar answers.
 */
const REACH_DAYS = 31;

/** The slices with finished numbers, by `kind` (0 is the whole population, value ''). */
export const FINISHED_DIMENSIONS = ['feature', 'device_type', 'country', 'segment'] as const;
export type FinishedDimension = (typeof FINISHED_DIMENSIONS)[number];
export const kindOf = (d: FinishedDimension): number => FINISHED_DIMENSIONS.indexOf(d) + 1;

/** The UTC hour an insert touched and the newest time it was marked (ms). */
export interface HourMark {
  readonly hourMs: number;
  readonly markedMs: number;
}

/**
 * The canonical spelling of an IANA zone name (`europe/berlin` -> `Europe/Berlin`, `utc` -> `UTC`),
 * undefined for a name Intl does not know. ClickHouse only knows exact spellings, and finished
 * numbers are keyed by one name per zone. ICU's canonical id is used, which for zones renamed in
 * IANA is the older name (`Asia/Kolkata` -> `Asia/Calcutta`): tzdata has both, so ClickHouse
 * (18.16 and current) reads either.
 */
export function canonicalTimeZone(tz: string): string | undefined {
  if (!/^[A-Za-z][A-Za-z0-9_+\-/]{0,63}$/.test(tz)) return undefined;
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: tz }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}

const dayFormats = new Map<string, Intl.DateTimeFormat>();

/** The calendar day (YYYY-MM-DD) of instant `ms` in `tz` (an IANA name Intl knows). */
export function localDay(ms: number, tz: string): string {
  let f = dayFormats.get(tz);
  if (f === undefined) {
    // en-CA formats dates as YYYY-MM-DD.
    f = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' });
    if (dayFormats.size >= 1_000) dayFormats.clear();
    dayFormats.set(tz, f);
  }
  return f.format(ms);
}

/** UTC midnight (ms) standing for a calendar day, and back. */
export const dayMs = (day: string): number => Date.parse(`${day}T00:00:00Z`);
export const isoDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
export const addDays = (day: string, n: number): string => isoDay(dayMs(day) + n * DAY_MS);

/**
 * One offset formatter per zone name (null: a name Intl does not know). Building one costs far more
 * than formatting with it: a 90-day request samples ~180 instants, the marks ~240 UTC days.
 * Bounded: names are validated but arbitrary, so the map is emptied at 1,000 of them.
 */
const offsetFormats = new Map<string, Intl.DateTimeFormat | null>();

export function offsetFormat(tz: string): Intl.DateTimeFormat | null {
  let f = offsetFormats.get(tz);
  if (f === undefined) {
    try {
      f = new Intl.DateTimeFormat('en-US', { timeZone: tz, timeZoneName: 'longOffset' });
    } catch {
      f = null;
    }
    if (offsetFormats.size >= 1_000) offsetFormats.clear();
    offsetFormats.set(tz, f);
  }
  return f;
}

/** UTC offset of `tz` at instant `ms`, in minutes; undefined for a zone Intl does not know. */
export function offsetMinutes(tz: string, ms: number): number | undefined {
  const name = offsetFormat(tz)
    ?.formatToParts(ms)
    .find((p) => p.type === 'timeZoneName')?.value;
  const m = /^GMT(?:([+-])(\d{2}):(\d{2}))?$/.exec(name ?? '');
  if (!m) return undefined;
  if (!m[1]) return 0;
  const v = Number(m[2]) * 60 + Number(m[3]);
  return m[1] === '-' ? -v : v;
}

/**
 * Local day numbers (days since the epoch) of instants in `tz`, for many instants: the offset is
 * read once per UTC day and trusted for the whole day when the next day starts with the same
 * offset (a zone changes its offset at most twice a year, never twice in a day); on a transition
 * day each instant is read. A 90-day request's marks are ~3,000 hours: this is what keeps the
 * per-request cost in microseconds instead of ~50 ms of formatting.
 */
function localDayNumbers(tz: string): (ms: number) => number {
  const perDay = new Map<number, number | null>();
  return (ms) => {
    const utcDay = Math.floor(ms / DAY_MS);
    let off = perDay.get(utcDay);
    if (off === undefined) {
      const start = offsetMinutes(tz, utcDay * DAY_MS) ?? 0;
      off = start === (offsetMinutes(tz, (utcDay + 1) * DAY_MS) ?? 0) ? start : null;
      perDay.set(utcDay, off);
    }
    return Math.floor((ms + (off ?? offsetMinutes(tz, ms) ?? 0) * 60_000) / DAY_MS);
  };
}

/**
 * For each local day some mark affects, the newest mark affecting it (ms). Days after `lastDay`
 * are left out (the refresher only computes closed days; readers only ask about their range).
 */
export function newestMarkByDay(marks: Iterable<HourMark>, tz: string, lastDay: string): Map<string, number> {
  const dayOf = localDayNumbers(tz);
  // First the newest mark per local day an hour starts in (and the next one when the hour
  // crosses a local midnight), then each of those days reaches REACH_DAYS forward.
  const first = new Map<number, number>();
  const bump = (m: Map<number, number>, day: number, marked: number) => {
    const prev = m.get(day);
    if (prev === undefined || marked > prev) m.set(day, marked);
  };
  for (const m of marks) {
    const a = dayOf(m.hourMs);
    const b = dayOf(m.hourMs + HOUR_MS - 1);
    bump(first, a, m.markedMs);
    if (b !== a) bump(first, b, m.markedMs);
  }
  const last = dayMs(lastDay) / DAY_MS;
  const reach = new Map<number, number>();
  for (const [day, marked] of first) {
    for (let d = day; d <= Math.min(last, day + REACH_DAYS - 1); d++) bump(reach, d, marked);
  }
  const out = new Map<string, number>();
  for (const [d, marked] of reach) out.set(isoDay(d * DAY_MS), marked);
  return out;
}

/**
 * Closed days to compute, newest first, and how many more are stale but wait for their marks to
 * settle. A day is stale when it has no finished numbers or its newest mark is at or after its
 * computed_at. A mark is trusted (its insert has ended, its rows are in a scan) once it is older
 * than `settleMs`; a stale day is computed when its newest mark is trusted, when it was never
 * computed, or when its last computation is `settleMs` old (so a steady trickle of late events
 * cannot postpone it for ever: it is computed again at most every settle interval, and stays stale
 * until a computation saw its newest mark). `done` maps day -> computed_at (ms); `today` is today in
 * `tz`; `nowMs` the server's clock.
 */
export function dueDays(o: {
  readonly marks: Iterable<HourMark>;
  readonly done: ReadonlyMap<string, number>;
  readonly tz: string;
  readonly today: string;
  readonly nowMs: number;
  readonly settleMs: number;
  /** The first day fact retention keeps (UTC date), if it dropped any: older windows are left alone. */
  readonly factsFrom?: string;
}): { due: string[]; waiting: number } {
  const due: string[] = [];
  let waiting = 0;
  const cut = o.nowMs - o.settleMs;
  // A day's window starts 29 days before it, a local day up to a day before its UTC date.
  const first = o.factsFrom === undefined ? '' : addDays(o.factsFrom, WINDOW_DAYS);
  for (const [day, marked] of newestMarkByDay(o.marks, o.tz, addDays(o.today, -1))) {
    if (day < first) continue;
    const computed = o.done.get(day);
    if (computed !== undefined && marked < computed) continue;
    // computed_at is the computation's start minus settle, so `computed + 2 settle` is one settle after it.
    if (computed === undefined || marked < cut || o.nowMs >= computed + 2 * o.settleMs) due.push(day);
    else waiting++;
  }
  return { due: due.sort().reverse(), waiting };
}

/**
 * Days of [from, to] whose finished numbers are current: computed, and no mark affecting them at or
 * after their computed_at. A closed day no mark affects and that was never computed had no activity
 * in its windows: it is current too, with no rows (its numbers are zero). Days from `today` on are
 * never finished.
 */
export function currentDays(o: {
  readonly from: string;
  readonly to: string;
  /** newestMarkByDay(marks of the range, tz, to). */
  readonly newest: ReadonlyMap<string, number>;
  readonly done: ReadonlyMap<string, number>;
  readonly today: string;
}): Set<string> {
  const out = new Set<string>();
  const end = Math.min(dayMs(o.to), dayMs(o.today) - DAY_MS);
  for (let d = dayMs(o.from); d <= end; d += DAY_MS) {
    const day = isoDay(d);
    const marked = o.newest.get(day);
    const computed = o.done.get(day);
    if (marked === undefined || (computed !== undefined && marked < computed)) out.add(day);
  }
  return out;
}

/** Every day of [from, to], ascending. */
export function daysOf(from: string, to: string): string[] {
  const out: string[] = [];
  for (let d = dayMs(from); d <= dayMs(to); d += DAY_MS) out.push(isoDay(d));
  return out;
}

/** Splits sorted-or-not days into runs of consecutive days, each [first, last], ascending. */
export function dayRuns(days: Iterable<string>, maxLength = Number.POSITIVE_INFINITY): [string, string][] {
  const sorted = [...new Set(days)].sort();
  const runs: [string, string][] = [];
  for (const day of sorted) {
    const run = runs.at(-1);
    if (run && addDays(run[1], 1) === day && (dayMs(day) - dayMs(run[0])) / DAY_MS < maxLength) run[1] = day;
    else runs.push([day, day]);
  }
  return runs;
}

/** Hours (UTC, ms) whose marks can affect the days [from, to] of `tz`: a margin of a day each side. */
export function markHoursFor(from: string, to: string): { fromMs: number; toMs: number } {
  return { fromMs: dayMs(from) - (REACH_DAYS + 1) * DAY_MS, toMs: dayMs(to) + 2 * DAY_MS };
}

/** Newest mark per hour, of the hours in [hoursFromMs, hoursToMs) when given. */
export function marksQuery(o: { hoursFromMs?: number; hoursToMs?: number } = {}): string {
  const sec = (ms: number) => `toDateTime(${Math.floor(ms / 1000)}, 'UTC')`;
  const where = [
    ...(o.hoursFromMs === undefined ? [] : [`hour >= ${sec(o.hoursFromMs)}`]),
    ...(o.hoursToMs === undefined ? [] : [`hour < ${sec(o.hoursToMs)}`]),
  ];
  return `SELECT toUInt32(hour) AS hour, toUInt32(max(marked_at)) AS marked
FROM agg_dirty_hours${where.length > 0 ? `\nWHERE ${where.join(' AND ')}` : ''}
GROUP BY hour`;
}

/** Finished days of one zone with their computed_at (seconds), within [from, to] when given. */
export function doneQuery(tz: string, from?: string, to?: string): string {
  const range =
    from === undefined || to === undefined
      ? ''
      : ` AND day >= ${quoteString(from)} AND day <= ${quoteString(to)}`;
  return `SELECT toString(day) AS day, toUInt32(max(computed_at)) AS computed
FROM agg_active_users_days
WHERE tz = ${quoteString(tz)}${range}
GROUP BY day`;
}
