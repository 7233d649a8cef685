/**
 * The dashboard's state and the pure transformations around it (URL <-> state, API rows -> chart
 * series and table cells). No DOM here, so it is unit-tested in Node; main.ts does the rendering.
 */
import {
  DIMENSIONS,
  type Dimension,
  dateOfDay,
  dayNumber,
  MAX_GROUP_BY,
  WINDOWS,
  type Window,
} from '../../params.ts';

export interface DashState {
  readonly from: string;
  readonly to: string;
  readonly tz: string;
  readonly window: Window;
  readonly groupBy: readonly Dimension[];
  readonly filters: Readonly<Partial<Record<Dimension, readonly string[]>>>;
  readonly includeTest: boolean;
  readonly includeBots: boolean;
  /** 0 turns auto-refresh off. */
  readonly refreshSeconds: number;
  /** Also show the previous period: the same number of days just before `from`. */
  readonly compare: boolean;
}

export const REFRESH_CHOICES = [0, 5, 10, 30, 60] as const;
export const DEFAULT_REFRESH_SECONDS = 5;
/** Beyond this many groups a chart is unreadable; the table still lists every group. */
export const MAX_CHART_SERIES = 8;

export interface ApiRow {
  readonly date: string;
  /** False for a sketch estimate; finished numbers and the exact scan are exact. */
  readonly exact?: boolean;
  readonly [key: string]: string | number | boolean | undefined;
}

export function defaultState(today: string): DashState {
  return {
    from: dateOfDay((dayNumber(today) ?? 0) - 29),
    to: today,
    tz: 'UTC',
    window: 'rolling',
    groupBy: [],
    filters: {},
    includeTest: false,
    includeBots: false,
    refreshSeconds: DEFAULT_REFRESH_SECONDS,
    compare: false,
  };
}

/** The API query string for a state; `extra` adds endpoint-specific parameters. */
export function apiParams(s: DashState, withWindow = true): URLSearchParams {
  const p = new URLSearchParams();
  p.set('from', s.from);
  p.set('to', s.to);
  p.set('tz', s.tz);
  if (withWindow) p.set('window', s.window);
  if (s.groupBy.length > 0) p.set('group_by', s.groupBy.join(','));
  for (const d of DIMENSIONS) for (const v of s.filters[d] ?? []) p.append(d, v);
  if (s.includeTest) p.set('include_test', 'true');
  if (s.includeBots) p.set('include_bots', 'true');
  return p;
}

/** The location hash holds the state, so a view can be bookmarked and shared. */
export function stateToHash(s: DashState): string {
  const p = apiParams(s);
  p.set('refresh', String(s.refreshSeconds));
  if (s.compare) p.set('compare', 'true');
  return `#${p.toString()}`;
}

export function stateFromHash(hash: string, today: string): DashState {
  const d = defaultState(today);
  const p = new URLSearchParams(hash.replace(/^#/, ''));
  const date = (v: string | null, fallback: string): string =>
    v !== null && dayNumber(v) !== undefined ? v : fallback;
  const filters: Partial<Record<Dimension, string[]>> = {};
  for (const dim of DIMENSIONS) {
    const values = p.getAll(dim);
    if (values.length > 0) filters[dim] = values;
  }
  const refresh = Number(p.get('refresh'));
  const win = p.get('window');
  return {
    from: date(p.get('from'), d.from),
    to: date(p.get('to'), d.to),
    tz: p.get('tz') || d.tz,
    window: (WINDOWS as readonly string[]).includes(win ?? '') ? (win as Window) : d.window,
    groupBy: (p.get('group_by') ?? '')
      .split(',')
      .filter((g): g is Dimension => (DIMENSIONS as readonly string[]).includes(g))
      .slice(0, MAX_GROUP_BY),
    filters,
    includeTest: p.get('include_test') === 'true',
    includeBots: p.get('include_bots') === 'true',
    refreshSeconds: (REFRESH_CHOICES as readonly number[]).includes(refresh) ? refresh : d.refreshSeconds,
    compare: p.get('compare') === 'true',
  };
}

/** Days in from..to, inclusive (at least 1 for a valid state). */
export function rangeDays(s: Pick<DashState, 'from' | 'to'>): number {
  return (dayNumber(s.to) ?? 0) - (dayNumber(s.from) ?? 0) + 1;
}

/** The state of the previous period: as many days as from..to, ending the day before `from`. */
export function previousPeriod(s: DashState): DashState {
  const n = rangeDays(s);
  const from = dayNumber(s.from) ?? 0;
  return { ...s, from: dateOfDay(from - n), to: dateOfDay(from - 1) };
}

/** Label of a row's group ("US / ios"), or "all" without a group-by. */
export function groupLabel(row: ApiRow, groupBy: readonly Dimension[]): string {
  if (groupBy.length === 0) return 'all';
  return groupBy.map((g) => String(row[g] ?? '')).join(' / ');
}

export interface Line {
  readonly label: string;
  readonly values: (number | null)[];
  /** A previous-period line, drawn dashed in the colour of the line it shadows. */
  readonly previous?: boolean;
}

export interface Series {
  /** Unix seconds of each day (uPlot's x axis), ascending. */
  readonly x: number[];
  readonly lines: Line[];
}

/**
 * One line per measure without a group-by; with one, one line per group of `measure`, keeping the
 * groups with the largest total so the chart stays readable.
 */
export function toSeries(
  rows: readonly ApiRow[],
  groupBy: readonly Dimension[],
  measures: readonly string[],
): Series {
  const days = [...new Set(rows.map((r) => r.date))].sort();
  const index = new Map(days.map((d, i) => [d, i]));
  const x = days.map((d) => (dayNumber(d) ?? 0) * 86_400);
  if (groupBy.length === 0) {
    return {
      x,
      lines: measures.map((m) => {
        const values: (number | null)[] = days.map(() => null);
        for (const r of rows) values[index.get(r.date) ?? 0] = Number(r[m]);
        return { label: m, values };
      }),
    };
  }
  const [measure = 'dau'] = measures;
  const groups = new Map<string, { total: number; values: (number | null)[] }>();
  for (const r of rows) {
    const label = groupLabel(r, groupBy);
    let g = groups.get(label);
    if (!g) {
      g = { total: 0, values: days.map(() => null) };
      groups.set(label, g);
    }
    const v = Number(r[measure]);
    g.values[index.get(r.date) ?? 0] = v;
    g.total += v;
  }
  const top = [...groups.entries()].sort((a, b) => b[1].total - a[1].total).slice(0, MAX_CHART_SERIES);
  return { x, lines: top.map(([label, g]) => ({ label: `${label} ${measure}`, values: g.values })) };
}

/**
 * The previous period's lines laid over the current days: the previous period's day i is drawn at
 * the current period's day i (`shiftDays` later), so the two shapes can be compared day by day. A
 * line of `previous` whose label the current series lacks (a group not active now) is left out:
 * the chart compares what it shows.
 */
export function withPrevious(current: Series, previous: Series, shiftDays: number): Series {
  const at = new Map(current.x.map((x, i) => [x, i]));
  const shadows: Line[] = [];
  for (const line of current.lines) {
    const prev = previous.lines.find((l) => l.label === line.label);
    if (!prev) continue;
    const values: (number | null)[] = current.x.map(() => null);
    previous.x.forEach((x, i) => {
      const j = at.get(x + shiftDays * 86_400);
      if (j !== undefined) values[j] = prev.values[i] ?? null;
    });
    shadows.push({ label: `${line.label} (previous)`, values, previous: true });
  }
  return { x: current.x, lines: [...current.lines, ...shadows] };
}

/** Change from `before` to `now` as a signed percentage ("+12.5%"), or "n/a" from zero. */
export function formatChange(now: number, before: number): string {
  if (before === 0) return now === 0 ? '±0%' : 'n/a';
  const pct = ((now - before) / before) * 100;
  return `${pct > 0 ? '+' : pct < 0 ? '−' : '±'}${Math.abs(pct).toFixed(1)}%`;
}

/**
 * The table as CSV (RFC 4180): the table's columns and rows in its order, values as the API gave
 * them (no thousands separators, ratios as fractions). A CSV cell must stay a plain number, so the
 * table's per-cell "~ estimate" mark becomes one more column, `exact`, at the end.
 */
export function toCsv(columns: readonly string[], rows: readonly ApiRow[]): string {
  const cell = (v: unknown): string => {
    const s = v === undefined || v === null ? '' : String(v);
    return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
  };
  const lines = [[...columns, 'exact'].map(cell).join(',')];
  for (const r of rows) lines.push([...columns.map((c) => r[c]), r.exact !== false].map(cell).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function formatRatio(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}
