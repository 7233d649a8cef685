/**
 * Segment's browser SDK, @segment/analytics-next, in headless Chromium from a page on another
 * origin, with `cdnURL` set to the collector and otherwise unchanged: it reads its project settings
 * from the collector (/v1/projects/<key>/settings), which point its Segment.io destination back at
 * the collector, and posts to /v1/i, /v1/t and /v1/p with Basic auth. Identify, track and page land
 * with the right user, feature and device; a request answered 503 once is resent (with its
 * X-Retry-Count header, which CORS must allow) and lands once.
 */
import { randomUUID } from 'node:crypto';
import { build } from 'esbuild';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type LaunchedBrowser, launchChromium, sdkSite } from '../harness/chromium.ts';
import { waitFor } from '../harness/consumer-process.ts';
import { type CountedCollector, expectCountedByQueryApi, startCountedCollector } from '../harness/counted.ts';
import {
  type Decoded,
  RefuseOnce,
  SOURCE,
  type TestCollector,
  type TopicReader,
  WRITE_KEY,
} from './collector-harness.ts';

let t: CountedCollector;
let c: TestCollector;
let reader: TopicReader;
let site: Awaited<ReturnType<typeof sdkSite>>;
let siteUrl: string;
let chromium: LaunchedBrowser;
const refusals = new RefuseOnce();

/** The npm package as a page would bundle it (dynamic imports inlined: no chunks from Segment's CDN). */
async function bundle(): Promise<string> {
  const out = await build({
    stdin: {
      contents:
        "import { AnalyticsBrowser } from '@segment/analytics-next'; window.AnalyticsBrowser = AnalyticsBrowser;",
      resolveDir: process.cwd(),
    },
    bundle: true,
    format: 'iife',
    platform: 'browser',
    write: false,
    logLevel: 'silent',
  });
  return out.outputFiles[0]?.text ?? '';
}

beforeAll(async () => {
  // A real consumer reads the collector's topic: the last test counts the users in the query API.
  t = await startCountedCollector('segment_browser', {}, { sink: refusals.wrap });
  ({ collector: c, reader } = t);
  const script = await bundle();
  site = await sdkSite(script, 'Reports');
  siteUrl = site.origin;
  chromium = await launchChromium((line) => process.stderr.write(`[chromium] ${line}\n`));
}, 600_000);
afterAll(async () => {
  await chromium?.close();
  await site?.close();
  await t?.close();
});

/** The slice of analytics-next's API the page uses. */
interface PageAnalytics {
  identify(id: string, traits: Record<string, unknown>): Promise<unknown>;
  track(event: string, properties: Record<string, unknown>): Promise<unknown>;
  page(name: string, properties: Record<string, unknown>): Promise<unknown>;
  user(): { anonymousId(): string };
}
declare const AnalyticsBrowser: {
  load(settings: { writeKey: string; cdnURL: string }): Promise<[PageAnalytics, unknown]>;
};
declare global {
  interface Window {
    analytics: PageAnalytics;
  }
}

it('delivers identify, track and page with the settings served by the collector', async () => {
  const page = await chromium.context.newPage();
  const paths: string[] = [];
  const statuses: number[] = [];
  page.on('request', (r) => {
    if (r.url().startsWith(c.url) && r.method() !== 'OPTIONS')
      paths.push(`${r.method()} ${new URL(r.url()).pathname}`);
  });
  page.on('response', (r) => {
    if (r.url().startsWith(c.url) && r.request().method() !== 'OPTIONS') statuses.push(r.status());
  });
  await page.goto(`${siteUrl}/reports/weekly`);
  const user = `seg-${randomUUID()}`;
  // Unchanged but for cdnURL (and the write key).
  const anon = await page.evaluate(
    async ({ url, key, id }) => {
      const [analytics] = await AnalyticsBrowser.load({ writeKey: key, cdnURL: url });
      window.analytics = analytics;
      const anonymousId = analytics.user().anonymousId();
      await analytics.identify(id, { plan: 'pro', createdAt: '2025-01-02T03:04:05Z' });
      await analytics.track('Report Exported', { feature: 'reports', format: 'csv' });
      await analytics.page('Weekly report', { feature: 'reports' });
      return anonymousId;
    },
    { url: c.url, key: WRITE_KEY, id: user },
  );

  const mine = (m: readonly Decoded[]) => m.filter((x) => x.value.user_id === user);
  const all = mine(await reader.waitFor((m) => mine(m).length >= 3));
  const identify = all.find((x) => x.schema.startsWith('user_identify'));
  expect(identify?.value).toMatchObject({ kind: 'identify', anonymous_id: anon, source: SOURCE });
  expect(identify?.value.registration_date).toBe(Date.parse('2025-01-02T03:04:05Z'));
  expect(JSON.parse(identify?.value.user_attributes as string)).toEqual({ plan: 'pro' });
  const activities = all.filter((x) => x.schema.startsWith('user_activity'));
  expect(activities.map((x) => [x.value.activity_name, x.value.feature_name]).sort()).toEqual([
    ['Report Exported', 'reports'],
    ['page_view', 'reports'],
  ]);
  for (const a of activities) {
    expect(a.value).toMatchObject({
      anonymous_id: anon,
      device_type: 'desktop',
      platform: 'web',
      source: SOURCE,
    });
    expect(a.value.browser_name).toEqual(expect.stringMatching(/Chrom/));
  }
  const pageView = activities.find((x) => x.value.activity_name === 'page_view');
  expect(JSON.parse(pageView?.value.activity_metadata as string)).toMatchObject({
    name: 'Weekly report',
    path: '/reports/weekly',
    url: `${siteUrl}/reports/weekly`,
  });
  expect(paths).toEqual([`GET /v1/projects/${WRITE_KEY}/settings`, 'POST /v1/i', 'POST /v1/t', 'POST /v1/p']);
  // The browser sees an answer after Kafka acknowledged its events, so after the reader may have them.
  await waitFor(
    'four answers in the browser',
    async () => statuses.length,
    (n) => n >= 4,
    10_000,
  );
  expect(statuses).toEqual([200, 200, 200, 200]);

  // Retry: the next publish for this user is refused once (503); the SDK resends the event (with
  // X-Retry-Count) and it lands once.
  const before = refusals.refused;
  refusals.keys.add(user);
  await page.evaluate(() => window.analytics.track('Report Scheduled', { feature: 'reports' }));
  const scheduled = (m: readonly Decoded[]) =>
    mine(m).filter((x) => x.value.activity_name === 'Report Scheduled');
  await reader.waitFor((m) => scheduled(m).length > 0);
  expect(refusals.refused - before).toBe(1);
  await waitFor(
    'the refusal and the resend answered',
    async () => statuses.length,
    (n) => n >= 6,
    10_000,
  );
  expect(statuses.slice(4)).toEqual([503, 200]);
  await new Promise((r) => setTimeout(r, 500));
  expect(scheduled(reader.messages)).toHaveLength(1);
  await page.close();
});

it('the query API counts every user the SDK delivered', async () => {
  await expectCountedByQueryApi(t.setup, reader.messages);
});
