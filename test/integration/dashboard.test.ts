/**
 * The dashboard in a real browser (Debian's chromium via playwright-core): the query service runs
 * on a known data set in real ClickHouse, with the refresher's finished numbers for its closed
 * days, the page is opened, a filter and a group-by are picked, and the numbers the page renders
 * must equal the API's: in the table (with each row's exactness), in the CSV download, in the
 * previous-period tiles, and in the "~" marks of estimated values. Also: the page loads nothing
 * from other origins (it must work offline), it shows API errors, and auto-refresh picks up new
 * events. A screenshot is kept in test/artifacts/ (git-ignored).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IngestActivityRow } from '../../services/consumer/ingest-row.ts';
import { type ClickHouseClient, createClickHouse } from '../../services/lib/clickhouse.ts';
import { migrate } from '../../services/lib/datamodel/migrate.ts';
import { createLogger } from '../../services/lib/logger.ts';
import { createRegistry } from '../../services/lib/metrics.ts';
import { buildApp, DASHBOARD_CSP, type QueryApp } from '../../services/query/app.ts';
import { createClickHouseStore } from '../../services/query/clickhouse-store.ts';
import { buildDashboard } from '../../services/query/dashboard/build.ts';
import { type LaunchedBrowser, launchChromium } from '../harness/chromium.ts';
import { testRefresher } from '../harness/refresher.ts';
import { clickhouseUrl, freshDatabase, type TestDatabase } from '../harness/services.ts';
import { generate } from './datamodel-dataset.ts';

const ARTIFACTS = new URL('../artifacts/', import.meta.url).pathname;
const LAST_DAY = Date.UTC(2025, 2, 20);
const VIEW = 'from=2025-03-01&to=2025-03-20&tz=UTC&window=rolling';

let db: TestDatabase;
const bundleDir = mkdtempSync(join(tmpdir(), 'dashboard-'));
let reader: ClickHouseClient;
let app: QueryApp;
let base: string;
let browser: LaunchedBrowser;
let page: Page;
let sample: IngestActivityRow;
const foreignRequests: string[] = [];

type Rendered = Record<string, string>;

/**
 * The table as the page shows it: one record per row, numbers from each cell's data-value, and the
 * row's exactness as `exact`.
 */
function renderedTable(p: Page): Promise<Rendered[]> {
  return p.$$eval('#table tbody tr', (trs) =>
    trs.map((tr) => ({
      ...Object.fromEntries(
        [...tr.querySelectorAll('td')].map((td) => [
          td.dataset.col ?? '',
          td.dataset.value ?? td.textContent ?? '',
        ]),
      ),
      exact: tr.dataset.exact ?? '',
    })),
  );
}

/** Opens a view afresh (a goto that changes only the hash would not reload the page). */
async function open(p: Page, hash: string, header?: string): Promise<void> {
  await p.goto('about:blank');
  await p.goto(`${base}/#${hash}`);
  await waitReady(p, header);
}

/** The rows of an RFC 4180 CSV without quoted line breaks (the data set has none). */
function parseCsv(text: string): Rendered[] {
  const cells = (line: string): string[] =>
    [...line.matchAll(/(?:^|,)(?:"((?:[^"]|"")*)"|([^,]*))/g)].map((m) =>
      m[1] !== undefined ? m[1].replaceAll('""', '"') : (m[2] ?? ''),
    );
  const [head = '', ...lines] = text.split('\r\n').filter((l) => l !== '');
  const names = cells(head);
  return lines.map((l) => Object.fromEntries(cells(l).map((v, i) => [names[i] ?? '', v])));
}

/**
 * Waits for the page's ready state and, optionally, for `header` in the table head. Predicates are
 * functions, not strings: the page's Content-Security-Policy forbids evaluating strings.
 */
async function waitReady(p: Page, header?: string): Promise<void> {
  await p.waitForFunction(
    (h) =>
      document.querySelector<HTMLElement>('#status')?.dataset.state === 'ready' &&
      (h === undefined || (document.querySelector('#table thead')?.textContent ?? '').includes(h)),
    header,
    { timeout: 30_000 },
  );
}

async function api(query: string): Promise<Record<string, string | number>[]> {
  const res = await fetch(`${base}/v1/active-users?${query}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { rows: Record<string, string | number>[] }).rows;
}

/** API rows in the table's order and shape (newest day first, every value as text). */
function asRendered(rows: Record<string, string | number>[]): Rendered[] {
  return rows
    .map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, String(v)])))
    .sort((a, b) => ((a.date ?? '') < (b.date ?? '') ? 1 : (a.date ?? '') > (b.date ?? '') ? -1 : 0));
}

beforeAll(async () => {
  db = await freshDatabase('dashboard');
  await migrate({ client: db.client, database: db.name });
  const data = generate(11, 400, 45, LAST_DAY);
  sample = data.rows[0] as IngestActivityRow;
  await db.client.insert({ table: 'ingest_user_activity', format: 'JSONEachRow', values: data.rows });
  // Finished numbers for every closed day (all of them: the data set lies in the past).
  await testRefresher(db.client).pass();
  reader = createClickHouse({ url: clickhouseUrl(), database: db.name, username: 'analytics_reader' });
  app = await buildApp({
    logger: createLogger('dashboard-it', 'silent'),
    store: createClickHouseStore(reader),
    registry: createRegistry('query'),
    limits: { maxRangeDays: 400 },
    tokens: [],
    rateLimitPerMinute: 100_000,
    requestTimeoutMs: 10_000,
    clickhouseTimeoutMs: 20_000,
    dashboardDir: await buildDashboard(bundleDir),
    isShuttingDown: () => false,
  });
  base = await app.listen({ host: '127.0.0.1', port: 0 });
  browser = await launchChromium();
  page = await browser.context.newPage();
  page.on('request', (req) => {
    if (!req.url().startsWith(base)) foreignRequests.push(req.url());
  });
});

afterAll(async () => {
  await browser?.close();
  await app?.close();
  await reader?.close();
  await db?.drop();
  rmSync(bundleDir, { recursive: true, force: true });
});

describe('dashboard', () => {
  it('renders the API numbers for a picked filter and group-by', async () => {
    await page.goto(`${base}/#${VIEW}&refresh=0`);
    await waitReady(page);
    // Without a group-by: latest-day tiles and one table row per day.
    expect(await page.$$eval('#tiles .tile', (t) => t.length)).toBe(7);
    expect(await renderedTable(page)).toEqual(asRendered(await api(VIEW)));

    // Pick a country in its filter (values load from /v1/dimensions) and group by platform.
    const country = sample.country_code ?? '';
    await page.waitForSelector(`select[data-dim="country"] option[value="${country}"]`, {
      state: 'attached',
    });
    await page.selectOption('select[data-dim="country"]', [country]);
    await page.selectOption('#group0', 'platform');
    await waitReady(page, 'platform');

    const shown = await renderedTable(page);
    const expected = asRendered(await api(`${VIEW}&group_by=platform&country=${country}`));
    expect(shown.length).toBeGreaterThan(0);
    // Same rows in the same (date, group) order: compare as sets keyed by date and platform.
    const key = (r: Rendered): string => `${r.date} ${r.platform}`;
    expect(new Map(shown.map((r) => [key(r), r]))).toEqual(new Map(expected.map((r) => [key(r), r])));
    expect(page.url()).toContain(`country=${country}`);
    expect(page.url()).toContain('group_by=platform');
    // Tiles are for the ungrouped series; charts have one line per platform.
    expect(await page.$$eval('#tiles .tile', (t) => t.length)).toBe(0);
    expect(await page.$$eval('#chart-users canvas', (c) => c.length)).toBe(1);
    expect(await page.textContent('#users-caption')).toBe('DAU by platform');

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });
    expect(foreignRequests).toEqual([]);
  });

  it('exports the table as shown as CSV: its columns, its order, the API values unformatted', async () => {
    await open(page, `${VIEW}&group_by=platform&refresh=0`, 'platform');
    const shown = await renderedTable(page);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#csv')]);
    expect(download.suggestedFilename()).toBe('active-users_2025-03-01_2025-03-20_platform.csv');
    const text = readFileSync(await download.path(), 'utf8');
    expect(text.split('\r\n')[0]).toBe(
      'date,platform,dau,wau,mau,dau_mau,wau_mau,new_users,returning_users,exact',
    );
    const csv = parseCsv(text);
    expect(csv.length).toBeGreaterThan(20);
    // The table's order, row for row, and the API's values, as the API wrote them.
    expect(csv.map((r) => `${r.date} ${r.platform}`)).toEqual(shown.map((r) => `${r.date} ${r.platform}`));
    const key = (r: Rendered): string => `${r.date} ${r.platform}`;
    const expected = asRendered(await api(`${VIEW}&group_by=platform`));
    expect(new Map(csv.map((r) => [key(r), r]))).toEqual(new Map(expected.map((r) => [key(r), r])));
    // Ratios as fractions, counts without separators: what a spreadsheet reads as numbers.
    expect(csv.every((r) => /^\d+$/.test(r.dau ?? '') && /^(0|1)(\.\d+)?$/.test(r.dau_mau ?? ''))).toBe(true);
  });

  it('compares with the previous period, and a shared link keeps the comparison', async () => {
    await open(page, `${VIEW}&refresh=0`);
    await page.check('#compare');
    await waitReady(page);
    expect(page.url()).toContain('compare=true');
    // 2025-03-01..20 is 20 days: the previous period is 2025-02-09..28, its last day matches the 20th.
    const previous = await api('from=2025-02-09&to=2025-02-28&tz=UTC&window=rolling');
    const before = previous.find((r) => r.date === '2025-02-28');
    expect(before).toBeDefined();
    const tiles = await page.$$eval('#tiles .tile', (ts) =>
      ts.map((t) => ({
        measure: (t as HTMLElement).dataset.measure ?? '',
        previous: (t as HTMLElement).dataset.previous ?? '',
        text: t.querySelector('.previous')?.textContent ?? '',
      })),
    );
    expect(tiles.map((t) => t.measure)).toEqual([
      'dau',
      'wau',
      'mau',
      'dau_mau',
      'wau_mau',
      'new_users',
      'returning_users',
    ]);
    for (const t of tiles) {
      expect(t.previous, t.measure).toBe(String(before?.[t.measure]));
      expect(t.text).toMatch(/^([+−±][\d.]+%|n\/a) vs .+ on 2025-02-28$/);
    }
    // A dashed line per series in the chart's legend.
    expect(
      await page.$$eval('#chart-users .u-legend .u-label', (ls) => ls.map((l) => l.textContent)),
    ).toEqual(['Time', 'dau', 'wau', 'mau', 'dau (previous)', 'wau (previous)', 'mau (previous)']);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-compare.png'), fullPage: true });
    // The link opened afresh shows the comparison again.
    const shared = page.url();
    const other = await browser.context.newPage();
    await other.goto(shared);
    await waitReady(other);
    expect(await other.isChecked('#compare')).toBe(true);
    expect(await other.$$eval('#tiles .tile[data-previous]', (t) => t.length)).toBe(7);
    await other.close();
  });

  it('marks estimated values with "~" and a title, exact ones not, and says how many days were finished', async () => {
    // A late event on a closed day: that day and the later ones in its 30-day window are no
    // longer finished and come from the sketches until the refresher's next pass.
    await new Promise((r) => setTimeout(r, 1_100));
    await db.client.insert({
      table: 'ingest_user_activity',
      format: 'JSONEachRow',
      values: [
        {
          ...sample,
          event_id: 'ev-late-1',
          user_id: 'late-user',
          actor_id: 'late-user',
          is_test_account: 0,
          is_bot: 0,
          activity_timestamp: Date.UTC(2025, 2, 10, 12),
        },
      ],
    });
    await open(page, `${VIEW}&refresh=0`);
    const shown = await renderedTable(page);
    expect(shown).toEqual(asRendered(await api(VIEW)));
    expect(shown.filter((r) => r.exact === 'true').map((r) => r.date)).toEqual(
      Array.from({ length: 9 }, (_, i) => `2025-03-0${9 - i}`),
    );
    expect(shown.filter((r) => r.exact === 'false')).toHaveLength(11);
    const cells = await page.$$eval('#table tbody td[data-value]', (tds) =>
      tds.map((td) => ({
        exact: (td.closest('tr') as HTMLElement).dataset.exact,
        text: td.textContent ?? '',
        title: td.getAttribute('title'),
      })),
    );
    expect(cells.length).toBe(20 * 7);
    for (const c of cells) {
      if (c.exact === 'true') expect(c).toMatchObject({ title: null, text: expect.not.stringMatching(/^~/) });
      else
        expect(c).toMatchObject({
          title: expect.stringContaining('Estimate'),
          text: expect.stringMatching(/^~\d/),
        });
    }
    // The latest day (the 20th) is an estimate now: so are its tiles.
    const tiles = await page.$$eval('#tiles .tile .value', (vs) =>
      vs.map((v) => [v.textContent, v.getAttribute('title')]),
    );
    expect(tiles).toHaveLength(7);
    for (const [text, title] of tiles) {
      expect(text).toMatch(/^~/);
      expect(title).toContain('Estimate');
    }
    expect(await page.textContent('#status')).toMatch(/^20 rows · 9 days finished · ~ = estimate · /);
  });

  it('serves the page under a Content-Security-Policy it does not violate, and keeps no token past the session', async () => {
    const res = await fetch(`${base}/`);
    expect(res.headers.get('content-security-policy')).toBe(DASHBOARD_CSP);
    const violations: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
    });
    await page.goto(`${base}/#${VIEW}&refresh=0`);
    await page.evaluate((key) => localStorage.setItem(key, 'old-token'), 'activity-pipeline.query-token');
    await page.reload();
    await waitReady(page);
    expect(await page.$$eval('#chart-users canvas', (c) => c.length)).toBe(1);
    // An inline script is refused by the policy (what an injected one would be).
    await page.evaluate(() => {
      const s = document.createElement('script');
      s.textContent = 'window.__injected = true';
      document.body.append(s);
    });
    expect(
      await page.evaluate(() => (window as unknown as { __injected?: boolean }).__injected),
    ).toBeUndefined();
    expect(violations.length).toBe(1);
    // A token an older version left in localStorage is gone.
    expect(
      await page.evaluate((key) => localStorage.getItem(key), 'activity-pipeline.query-token'),
    ).toBeNull();
  });

  it('shows the API error for a bad request', async () => {
    await page.goto(`${base}/#${VIEW.replace('tz=UTC', 'tz=Mars%2FBase')}&refresh=0`);
    await page.waitForSelector('#error:not([hidden])');
    expect(await page.textContent('#error')).toContain('IANA time zone');
    expect(await page.getAttribute('#status', 'data-state')).toBe('error');
  });

  it('auto-refreshes while events stream in', async () => {
    await page.goto(`${base}/#${VIEW}&refresh=5`);
    await waitReady(page);
    const before = await renderedTable(page);
    const latest = before[0]?.date ?? '';
    const dau = Number(before[0]?.dau);
    // A new user active on the last day: the page must show the higher DAU without a reload.
    await db.client.insert({
      table: 'ingest_user_activity',
      format: 'JSONEachRow',
      values: [
        {
          ...sample,
          event_id: 'ev-live-1',
          user_id: 'live-user',
          actor_id: 'live-user',
          is_test_account: 0,
          is_bot: 0,
          activity_timestamp: LAST_DAY + 3_600_000,
        },
      ],
    });
    await page.waitForFunction(
      ([date, value]) =>
        document.querySelector<HTMLElement>(`#table tbody tr[data-date="${date}"] td[data-col="dau"]`)
          ?.dataset.value === value,
      [latest, String(dau + 1)] as const,
      { timeout: 30_000 },
    );
  });
});
