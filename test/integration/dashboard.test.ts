/**
 * The dashboard in a real browser (Debian's chromium via playwright-core): the query service runs
 * on a known data set in real ClickHouse, the page is opened, a filter and a group-by are picked,
 * and the numbers the page renders must equal the API's. Also: the page loads nothing from other
 * origins (it must work offline), it shows API errors, and auto-refresh picks up new events.
 * A screenshot is kept in test/artifacts/ (git-ignored).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IngestActivityRow } from '../../clickhouse/ingest-row.ts';
import { migrate } from '../../clickhouse/migrate.ts';
import { type ClickHouseClient, createClickHouse } from '../../services/lib/clickhouse.ts';
import { createLogger } from '../../services/lib/logger.ts';
import { createRegistry } from '../../services/lib/metrics.ts';
import { buildApp, DASHBOARD_CSP, type QueryApp } from '../../services/query/app.ts';
import { createClickHouseStore } from '../../services/query/clickhouse-store.ts';
import { buildDashboard } from '../../services/query/dashboard/build.ts';
import { type LaunchedBrowser, launchChromium } from '../harness/chromium.ts';
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

/** The table as the page shows it: one record per row, numbers from each cell's data-value. */
function renderedTable(p: Page): Promise<Rendered[]> {
  return p.$$eval('#table tbody tr', (trs) =>
    trs.map((tr) =>
      Object.fromEntries(
        [...tr.querySelectorAll('td')].map((td) => [
          td.dataset.col ?? '',
          td.dataset.value ?? td.textContent ?? '',
        ]),
      ),
    ),
  );
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
