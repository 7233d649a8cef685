/**
 * RudderStack's browser SDK (@rudderstack/analytics-js v3), the package's own bundled build (its
 * plugins inside, none fetched from RudderStack's CDN), in headless Chromium on a page from another
 * origin, with `dataPlaneUrl` and `configUrl` set to the collector and nothing else changed: it
 * loads its source configuration from the collector's /sourceConfig/, then its identify, track and
 * page calls land with the user, anonymous id, feature and session it sent.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type LaunchedBrowser, launchChromium, sdkSite } from '../harness/chromium.ts';
import { type CountedCollector, expectCountedByQueryApi, startCountedCollector } from '../harness/counted.ts';
import {
  type Decoded,
  FailOncePaths,
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
const faults = new FailOncePaths();
const failOnce = faults.paths;
const posts = faults.posts;

beforeAll(async () => {
  // A real consumer reads the collector's topic: the last test counts the users in the query API.
  t = await startCountedCollector('rudder_browser', {}, { onRequest: faults.hook });
  ({ collector: c, reader } = t);
  const require = createRequire(import.meta.url);
  // The package's bundled UMD build (global `rudderanalytics`): the /bundled entry point's script.
  const sdk = readFileSync(
    require
      .resolve('@rudderstack/analytics-js')
      .replace(/modern\/cjs\/index\.cjs$/, 'modern/bundled/umd/index.js'),
    'utf8',
  );
  site = await sdkSite(sdk);
  siteUrl = `${site.origin}/docs`;
  chromium = await launchChromium((line) => process.stderr.write(`[chromium] ${line}\n`));
}, 600_000);
afterAll(async () => {
  await chromium?.close();
  await site?.close();
  await t?.close();
});

interface RudderAnalytics {
  load: (key: string, dataPlaneUrl: string, options: object) => void;
  ready: (cb: () => void) => void;
  identify: (userId: string, traits: object) => void;
  track: (event: string, properties: object) => void;
  page: (category: string, name: string, properties: object) => void;
  getAnonymousId: () => string;
  getSessionId: () => number | null;
}

it('loads its source config from the collector and delivers identify, track and page', async () => {
  const page = await chromium.context.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await page.goto(siteUrl);
  const user = `rs-web-${randomUUID()}`;
  const sent = await page.evaluate(
    async ({ key, url, user }) => {
      const g = window as unknown as { rudderanalytics: { RudderAnalytics: new () => RudderAnalytics } };
      const ra = new g.rudderanalytics.RudderAnalytics();
      await new Promise<void>((resolve) => {
        ra.load(key, url, { configUrl: url });
        ra.ready(resolve);
      });
      ra.identify(user, { plan: 'pro', gender: 'f' });
      ra.track('Search Performed', { feature: 'search', query: 'q' });
      ra.page('Docs', 'Pricing', { feature: 'pricing' });
      return { anonymousId: ra.getAnonymousId(), sessionId: ra.getSessionId() };
    },
    { key: WRITE_KEY, url: c.url, user },
  );
  const mine = (m: readonly Decoded[]) => m.filter((x) => x.value.user_id === user);
  const all = mine(await reader.waitFor((m) => mine(m).length >= 3));
  const activities = all.filter((x) => x.schema.startsWith('user_activity')).map((x) => x.value);
  expect(activities.map((x) => [x.activity_name, x.feature_name]).sort()).toEqual([
    ['Search Performed', 'search'],
    ['page_view', 'pricing'],
  ]);
  for (const a of activities) {
    expect(a).toMatchObject({
      source: SOURCE,
      anonymous_id: sent.anonymousId,
      session_id: sent.sessionId,
      device_type: 'desktop',
      platform: 'web',
      // Its context.timezone is a GMT offset, not a zone: not stored (and no bar to the IP lookup).
      timezone: null,
    });
  }
  const [profile] = all.filter((x) => x.schema.startsWith('user_identify'));
  expect(profile?.value).toMatchObject({ kind: 'identify', anonymous_id: sent.anonymousId, gender: 'f' });
  expect(JSON.parse(String(profile?.value.user_attributes))).toMatchObject({ plan: 'pro' });
  expect(sent.sessionId).toEqual(expect.any(Number));
  expect(errors).toEqual([]);
  await page.close();
});

it('resends a track after a 503 and it lands once', async () => {
  const page = await chromium.context.newPage();
  await page.goto(siteUrl);
  const user = `rs-web-retry-${randomUUID()}`;
  await page.evaluate(
    async ({ key, url }) => {
      const g = window as unknown as { rudderanalytics: { RudderAnalytics: new () => RudderAnalytics } };
      const ra = new g.rudderanalytics.RudderAnalytics();
      await new Promise<void>((resolve) => {
        ra.load(key, url, { configUrl: url });
        ra.ready(resolve);
      });
      // Once loaded, the SDK puts its instance where its UMD build put the class.
      (window as unknown as { ra: RudderAnalytics }).ra = ra;
    },
    { key: WRITE_KEY, url: c.url },
  );
  const before = posts.get('/v1/track') ?? 0;
  failOnce.add('/v1/track');
  await page.evaluate((user) => {
    const { ra } = window as unknown as { ra: RudderAnalytics };
    ra.identify(user, {});
    ra.track('Report Viewed', { feature: 'reports' });
  }, user);
  const track = (m: readonly Decoded[]) =>
    m.filter((x) => x.value.user_id === user && x.value.activity_name === 'Report Viewed');
  await reader.waitFor((m) => track(m).length > 0);
  // Long enough for a second copy to have arrived, had the first attempt been accepted.
  await new Promise((r) => setTimeout(r, 1_500));
  expect(failOnce.size).toBe(0);
  expect(posts.get('/v1/track')).toBe(before + 2);
  expect(track(reader.messages)).toHaveLength(1);
  await page.close();
});

it('answers the config request of an unknown write key with 401, so the SDK does not load', async () => {
  const res = await fetch(`${c.url}/sourceConfig/?p=npm&v=3&writeKey=nope`, {
    headers: { authorization: `Basic ${Buffer.from('nope:').toString('base64')}` },
  });
  expect(res.status).toBe(401);
});

it('the query API counts every user the SDKs delivered', async () => {
  await expectCountedByQueryApi(t.setup, reader.messages);
});
