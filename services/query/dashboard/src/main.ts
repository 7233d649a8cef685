/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The dashboard page: reads its state from the location hash, fetches the query API, renders
 * latest-day tiles, two uPlot charts (active users; stickiness) and a table, and refreshes on a
 * timer while events stream in. Bundled by ../build.ts with uPlot, so the page needs no CDN.
 *
 * Rendering is keyed on a request sequence number: a slow response that arrives after a newer one
 * is dropped, so the page never shows numbers for a state the user already left.
 */
import uPlot from 'uplot';
import { DIMENSIONS, type Dimension, dateOfDay, dayNumber, MAX_GROUP_BY, todayIn } from '../../params.ts';
import {
  type ApiRow,
  apiParams,
  type DashState,
  formatChange,
  formatCount,
  formatRatio,
  groupLabel,
  previousPeriod,
  REFRESH_CHOICES,
  rangeDays,
  type Series,
  stateFromHash,
  stateToHash,
  toCsv,
  toSeries,
  withPrevious,
} from './model.ts';

const MEASURES = ['dau', 'wau', 'mau', 'dau_mau', 'wau_mau', 'new_users', 'returning_users'] as const;
const RATIOS = new Set<string>(['dau_mau', 'wau_mau']);
/** Said by the title of every estimated value (the "~" mark); the error bound is clickhouse/README.md's. */
const ESTIMATE_TITLE = 'Estimate from sketches (within about 1%); exact values have no ~';
const COLORS = ['#2f6fde', '#e8871e', '#2a9d5b', '#c2378a', '#7a5af5', '#0fa3b1', '#b8860b', '#6b7280'];
/** Filter pickers change slowly; they are refreshed less often than the numbers. */
const DIMENSIONS_REFRESH_MS = 60_000;
const TOKEN_KEY = 'activity-pipeline.query-token';
// The token lives for the tab's session only (sessionStorage); earlier versions kept it in
// localStorage, where it outlived the session: removed on load.
localStorage.removeItem(TOKEN_KEY);

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el as T;
};

const ui = {
  status: $<HTMLSpanElement>('status'),
  from: $<HTMLInputElement>('from'),
  to: $<HTMLInputElement>('to'),
  tz: $<HTMLInputElement>('tz'),
  zones: $<HTMLDataListElement>('zones'),
  window: $<HTMLSelectElement>('window'),
  groups: [0, 1, 2].map((i) => $<HTMLSelectElement>(`group${i}`)),
  includeTest: $<HTMLInputElement>('include_test'),
  includeBots: $<HTMLInputElement>('include_bots'),
  compare: $<HTMLInputElement>('compare'),
  refresh: $<HTMLSelectElement>('refresh'),
  filters: $<HTMLDivElement>('filters'),
  clearFilters: $<HTMLButtonElement>('clear-filters'),
  tokenForm: $<HTMLFormElement>('token-form'),
  token: $<HTMLInputElement>('token'),
  error: $<HTMLDivElement>('error'),
  tiles: $<HTMLElement>('tiles'),
  usersChart: $<HTMLDivElement>('chart-users'),
  stickinessChart: $<HTMLDivElement>('chart-stickiness'),
  usersCaption: $<HTMLElement>('users-caption'),
  stickinessCaption: $<HTMLElement>('stickiness-caption'),
  table: $<HTMLTableElement>('table'),
  csv: $<HTMLAnchorElement>('csv'),
};

class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

async function api<T>(path: string, params: URLSearchParams): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${path}?${params.toString()}`, { headers });
  const body = (await res.json().catch(() => ({}))) as { message?: string; problems?: { message: string }[] };
  if (!res.ok) {
    const detail = body.problems?.length ? body.problems.map((p) => p.message).join('\n') : body.message;
    throw new ApiError(res.status, detail ?? `HTTP ${res.status}`);
  }
  return body as T;
}

function today(tz: string): string {
  try {
    return todayIn(tz, new Date());
  } catch {
    return todayIn('UTC', new Date());
  }
}

let state: DashState = stateFromHash(location.hash, today('UTC'));

function setState(next: DashState): void {
  state = next;
  history.replaceState(null, '', stateToHash(state));
  void refresh();
}

// ---------------------------------------------------------------------------------------------
// controls

function option(value: string, label: string): HTMLOptionElement {
  const o = document.createElement('option');
  o.value = value;
  o.textContent = label;
  return o;
}

function initControls(): void {
  for (const z of ['UTC', ...Intl.supportedValuesOf('timeZone')]) ui.zones.append(option(z, z));
  for (const s of REFRESH_CHOICES) ui.refresh.append(option(String(s), s === 0 ? 'off' : `every ${s} s`));
  for (const g of ui.groups) {
    g.append(option('', '—'));
    for (const d of DIMENSIONS) g.append(option(d, d));
  }
  for (const d of DIMENSIONS) {
    const label = document.createElement('label');
    label.textContent = d;
    const select = document.createElement('select');
    select.multiple = true;
    select.dataset.dim = d;
    select.setAttribute('aria-label', `Filter ${d}`);
    select.addEventListener('change', () => {
      const values = [...select.selectedOptions].map((o) => o.value);
      const filters = { ...state.filters };
      if (values.length > 0) filters[d] = values;
      else delete filters[d];
      setState({ ...state, filters });
    });
    label.append(select);
    ui.filters.append(label);
  }

  const onChange = (): void => {
    const groupBy = ui.groups.map((g) => g.value).filter((v): v is Dimension => v !== '');
    setState({
      ...state,
      from: ui.from.value || state.from,
      to: ui.to.value || state.to,
      window: ui.window.value === 'calendar' ? 'calendar' : 'rolling',
      groupBy: [...new Set(groupBy)].slice(0, MAX_GROUP_BY),
      includeTest: ui.includeTest.checked,
      includeBots: ui.includeBots.checked,
      refreshSeconds: Number(ui.refresh.value),
      compare: ui.compare.checked,
    });
  };
  for (const el of [
    ui.from,
    ui.to,
    ui.window,
    ...ui.groups,
    ui.includeTest,
    ui.includeBots,
    ui.refresh,
    ui.compare,
  ]) {
    el.addEventListener('change', onChange);
  }
  ui.tz.addEventListener('change', () => {
    const tz = ui.tz.value.trim();
    if (tz !== '') {
      setState({ ...state, tz });
      void loadDimensions();
    }
  });
  ui.clearFilters.addEventListener('click', () => setState({ ...state, filters: {} }));
  ui.tokenForm.addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, ui.token.value);
    ui.tokenForm.hidden = true;
    void loadDimensions();
    void refresh();
  });
  window.addEventListener('hashchange', () => {
    state = stateFromHash(location.hash, today(state.tz));
    void refresh();
  });
}

/** Puts the state into the controls (after load and hash changes). */
function syncControls(): void {
  ui.from.value = state.from;
  ui.to.value = state.to;
  ui.tz.value = state.tz;
  ui.window.value = state.window;
  ui.groups.forEach((g, i) => {
    g.value = state.groupBy[i] ?? '';
  });
  ui.includeTest.checked = state.includeTest;
  ui.includeBots.checked = state.includeBots;
  ui.compare.checked = state.compare;
  ui.refresh.value = String(state.refreshSeconds);
  for (const select of ui.filters.querySelectorAll('select')) {
    const chosen = new Set(state.filters[select.dataset.dim as Dimension] ?? []);
    for (const o of select.options) o.selected = chosen.has(o.value);
  }
}

interface DimensionValues {
  readonly values: { readonly value: string; readonly users: number }[];
}

async function loadDimensions(): Promise<void> {
  const params = new URLSearchParams({ from: state.from, to: state.to, tz: state.tz, limit: '200' });
  await Promise.all(
    DIMENSIONS.map(async (d) => {
      const select = ui.filters.querySelector<HTMLSelectElement>(`select[data-dim="${d}"]`);
      if (!select) return;
      try {
        const r = await api<DimensionValues>(`v1/dimensions/${d}`, params);
        const chosen = new Set(state.filters[d] ?? []);
        // Chosen values stay listed even when they have no users in the new range.
        const values = new Map(r.values.map((v) => [v.value, v.users]));
        for (const c of chosen) if (!values.has(c)) values.set(c, 0);
        select.replaceChildren(
          ...[...values].map(([v, users]) => {
            const o = option(v, `${v === '' ? '(none)' : v} · ${formatCount(users)}`);
            o.selected = chosen.has(v);
            return o;
          }),
        );
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) ui.tokenForm.hidden = false;
      }
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// rendering

function setStatus(kind: 'loading' | 'ready' | 'error', text: string): void {
  ui.status.dataset.state = kind;
  document.body.dataset.state = kind;
  ui.status.textContent = text;
  ui.table.setAttribute('aria-busy', String(kind === 'loading'));
}

function showError(message: string | undefined): void {
  ui.error.hidden = message === undefined;
  ui.error.textContent = message ?? '';
}

/** A measure's value as the page shows it: formatted, and marked "~" (with a title) when estimated. */
function showValue(el: HTMLElement, measure: string, v: number, exact: boolean): void {
  const text = RATIOS.has(measure) ? formatRatio(v) : formatCount(v);
  el.textContent = exact ? text : `~${text}`;
  el.dataset.exact = String(exact);
  if (exact) el.removeAttribute('title');
  else el.title = ESTIMATE_TITLE;
}

/**
 * Latest-day tiles (ungrouped only). With compare on, each tile also shows the previous period's
 * value on the matching day (as many days earlier as the range is long) and the change: the
 * headline number is where a change is looked for first. The charts carry the whole range.
 */
function renderTiles(rows: readonly ApiRow[], previous: readonly ApiRow[] | undefined): void {
  const last = state.groupBy.length === 0 ? rows.at(-1) : undefined;
  if (!last) {
    ui.tiles.replaceChildren();
    return;
  }
  const before = dateOfDay((dayNumber(last.date) ?? 0) - rangeDays(state));
  const prev = previous?.find((r) => r.date === before);
  const label: Record<string, string> = {
    dau: 'DAU',
    wau: state.window === 'calendar' ? 'Week to date' : 'WAU',
    mau: state.window === 'calendar' ? 'Month to date' : 'MAU',
    dau_mau: 'DAU / MAU',
    wau_mau: 'WAU / MAU',
    new_users: 'New',
    returning_users: 'Returning',
  };
  ui.tiles.replaceChildren(
    ...MEASURES.map((m) => {
      const tile = document.createElement('div');
      tile.className = 'tile';
      tile.dataset.measure = m;
      tile.dataset.value = String(last[m]);
      const l = document.createElement('div');
      l.className = 'label';
      l.textContent = `${label[m]} · ${last.date}`;
      const v = document.createElement('div');
      v.className = 'value';
      showValue(v, m, Number(last[m]), last.exact !== false);
      tile.append(l, v);
      if (previous) {
        const p = document.createElement('div');
        p.className = 'previous';
        if (prev) {
          tile.dataset.previous = String(prev[m]);
          const was = document.createElement('span');
          showValue(was, m, Number(prev[m]), prev.exact !== false);
          p.append(`${formatChange(Number(last[m]), Number(prev[m]))} vs `, was, ` on ${before}`);
        } else p.textContent = `no data on ${before}`;
        tile.append(p);
      }
      return tile;
    }),
  );
}

let csvUrl: string | undefined;

/** The download link of the table as shown; the previous blob is released. */
function renderCsv(cols: readonly string[], sorted: readonly ApiRow[]): void {
  if (csvUrl !== undefined) URL.revokeObjectURL(csvUrl);
  csvUrl = URL.createObjectURL(new Blob([toCsv(cols, sorted)], { type: 'text/csv;charset=utf-8' }));
  ui.csv.href = csvUrl;
  ui.csv.download = `active-users_${state.from}_${state.to}${state.groupBy.map((g) => `_${g}`).join('')}.csv`;
}

function renderTable(rows: readonly ApiRow[]): void {
  const cols = ['date', ...state.groupBy, ...MEASURES];
  const head = document.createElement('tr');
  for (const c of cols) {
    const th = document.createElement('th');
    th.textContent = c;
    if (state.groupBy.includes(c as Dimension)) th.className = 'dim';
    head.append(th);
  }
  ui.table.tHead?.replaceChildren(head);
  // Newest day first: that is the one people look at while events stream in.
  const sorted = [...rows].sort((a, b) => (a.date === b.date ? 0 : a.date < b.date ? 1 : -1));
  ui.table.tBodies[0]?.replaceChildren(
    ...sorted.map((r) => {
      const tr = document.createElement('tr');
      tr.dataset.date = r.date;
      tr.dataset.group = groupLabel(r, state.groupBy);
      tr.dataset.exact = String(r.exact !== false);
      for (const c of cols) {
        const td = document.createElement('td');
        td.dataset.col = c;
        const v = r[c];
        if (typeof v === 'number') {
          td.dataset.value = String(v);
          showValue(td, c, v, r.exact !== false);
        } else td.textContent = String(v ?? '');
        if (state.groupBy.includes(c as Dimension)) td.className = 'dim';
        tr.append(td);
      }
      return tr;
    }),
  );
  renderCsv(cols, sorted);
}

const charts = new Map<HTMLElement, { plot: uPlot; key: string }>();

function renderChart(el: HTMLElement, s: Series, ratio: boolean): void {
  const key = s.lines.map((l) => l.label).join('|');
  const data = [s.x, ...s.lines.map((l) => l.values)] as uPlot.AlignedData;
  const existing = charts.get(el);
  // Same series: update in place (no flicker on auto-refresh); otherwise rebuild.
  if (existing && existing.key === key) {
    existing.plot.setData(data);
    return;
  }
  existing?.plot.destroy();
  const fmt = (v: number | null): string => (v === null ? '—' : ratio ? formatRatio(v) : formatCount(v));
  const plot = new uPlot(
    {
      width: Math.max(320, el.clientWidth || 600),
      height: 280,
      // Days are UTC-midnight timestamps of calendar dates; show them as such in any browser zone.
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'UTC'),
      scales: { x: { time: true } },
      series: [
        {},
        ...s.lines.map((l, i) => {
          // A previous-period line takes the colour of the line it shadows, dashed and thinner.
          const own = l.previous ? s.lines.findIndex((c) => `${c.label} (previous)` === l.label) : i;
          return {
            label: l.label,
            stroke: COLORS[own % COLORS.length] ?? '#333',
            width: l.previous ? 1.5 : 2,
            ...(l.previous ? { dash: [6, 4] } : {}),
            value: (_u: uPlot, v: number | null) => fmt(v),
          };
        }),
      ],
      axes: [{}, { values: (_u: uPlot, ticks: number[]) => ticks.map((t) => fmt(t)), size: 60 }],
    },
    data,
    el,
  );
  charts.set(el, { plot, key });
}

/**
 * With compare on, the previous period is drawn as a dashed line per series over the same days
 * (shifted by the range's length), so shapes compare at a glance; the tiles give the numbers.
 */
function renderCharts(rows: readonly ApiRow[], previous: readonly ApiRow[] | undefined): void {
  const grouped = state.groupBy.length > 0;
  const series = (measures: readonly string[]): Series => {
    const current = toSeries(rows, state.groupBy, measures);
    return previous
      ? withPrevious(current, toSeries(previous, state.groupBy, measures), rangeDays(state))
      : current;
  };
  ui.usersCaption.textContent = grouped ? `DAU by ${state.groupBy.join(', ')}` : 'DAU, WAU, MAU';
  ui.stickinessCaption.textContent = grouped
    ? `DAU / MAU by ${state.groupBy.join(', ')}`
    : 'Stickiness (DAU / MAU, WAU / MAU)';
  renderChart(ui.usersChart, series(grouped ? ['dau'] : ['dau', 'wau', 'mau']), false);
  renderChart(ui.stickinessChart, series(grouped ? ['dau_mau'] : ['dau_mau', 'wau_mau']), true);
}

// ---------------------------------------------------------------------------------------------
// refresh loop

interface ActiveUsers {
  readonly rows: ApiRow[];
  readonly meta: {
    readonly truncated: boolean;
    readonly finished_days?: number;
    readonly cached_days?: number;
  };
}

/** Rows, where the days came from (finished numbers, cache) and when: quiet, one line. */
function statusLine(r: ActiveUsers, previous: ActiveUsers | undefined): string {
  const parts = [`${r.rows.length} rows`];
  const sources = [
    r.meta.finished_days ? `${r.meta.finished_days} days finished` : '',
    r.meta.cached_days ? `${r.meta.cached_days} cached` : '',
  ].filter((x) => x !== '');
  if (sources.length > 0) parts.push(sources.join(', '));
  if (r.rows.some((row) => row.exact === false)) parts.push('~ = estimate');
  if (previous) parts.push(`vs ${previousPeriod(state).from} – ${previousPeriod(state).to}`);
  parts.push(`updated ${new Date().toLocaleTimeString()}`);
  const truncated = r.meta.truncated || previous?.meta.truncated ? ' (truncated: narrow the group-by)' : '';
  return `${parts.join(' · ')}${truncated}`;
}

let sequence = 0;
let inFlight = false;

async function refresh(): Promise<void> {
  const mine = ++sequence;
  syncControls();
  inFlight = true;
  setStatus('loading', 'Loading…');
  try {
    // The previous period is closed days only: finished numbers or the service's cache answer it
    // after the first time, so re-fetching it on every auto-refresh costs little.
    const [r, previous] = await Promise.all([
      api<ActiveUsers>('v1/active-users', apiParams(state)),
      state.compare ? api<ActiveUsers>('v1/active-users', apiParams(previousPeriod(state))) : undefined,
    ]);
    if (mine !== sequence) return;
    showError(undefined);
    renderTiles(r.rows, previous?.rows);
    renderCharts(r.rows, previous?.rows);
    renderTable(r.rows);
    setStatus('ready', statusLine(r, previous));
  } catch (err) {
    if (mine !== sequence) return;
    if (err instanceof ApiError && err.status === 401) ui.tokenForm.hidden = false;
    showError(err instanceof Error ? err.message : String(err));
    setStatus('error', 'Failed');
  } finally {
    if (mine === sequence) inFlight = false;
  }
}

function tick(): void {
  // A slow query is not stacked on itself: the next refresh waits for the current one.
  if (state.refreshSeconds > 0 && !inFlight && document.visibilityState === 'visible') void refresh();
  setTimeout(tick, Math.max(1, state.refreshSeconds || 5) * 1000);
}

initControls();
syncControls();
history.replaceState(null, '', stateToHash(state));
void loadDimensions();
void refresh();
setTimeout(tick, state.refreshSeconds * 1000 || 5000);
setInterval(() => void loadDimensions(), DIMENSIONS_REFRESH_MS);
