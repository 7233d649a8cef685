/**
 * PostHog's official SDKs, pointed at the collector (`host` / `api_host`) and otherwise unchanged:
 * posthog-node posts gzip JSON to /batch/; posthog-js, in headless Chromium from a page on another
 * origin, reads its project config from /array/<token>/config.js and posts gzip bodies declared
 * as text/plain to /e/. Captures, page views, identify and alias land with the right user,
 * feature, session and profile. Retry: the collector answers 503 once (a publish refused as Kafka
 * would refuse it) and each SDK resends; the event lands once, with its id.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { PostHog } from 'posthog-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LaunchedBrowser, launchChromium, sdkSite } from '../harness/chromium.ts';
import { type CountedCollector, expectCountedByQueryApi, startCountedCollector } from '../harness/counted.ts';
import { kafkaBrokers } from '../harness/services.ts';
import {
  type Decoded,
  post,
  RefuseOnce,
  SOURCE,
  startCollector,
  type TestCollector,
  type TopicReader,
  WRITE_KEY,
} from './collector-harness.ts';

let t: CountedCollector;
let c: TestCollector;
let reader: TopicReader;
let site: Awaited<ReturnType<typeof sdkSite>>;
let siteUrl: string;
let chromium: LaunchedBrowser | undefined;

const refusals = new RefuseOnce();

const POSTHOG_JS = readFileSync(createRequire(import.meta.url).resolve('posthog-js/dist/array.full.js'));

beforeAll(async () => {
  // A real consumer reads the collector's topic: the last test counts the users in the query API.
  t = await startCountedCollector(
    'posthog',
    { POSTHOG_FEATURE_FROM: 'property,map,path' },
    { sink: refusals.wrap },
  );
  ({ collector: c, reader } = t);
  site = await sdkSite(POSTHOG_JS, 'Reports');
  siteUrl = site.origin;
}, 600_000);
afterAll(async () => {
  await chromium?.close();
  await site?.close();
  await t?.close();
});

const byUser = (user: string) => (m: readonly Decoded[]) => m.filter((x) => x.value.user_id === user);
const activities = (m: readonly Decoded[]) => m.filter((x) => x.schema.startsWith('user_activity'));
const identifies = (m: readonly Decoded[]) => m.filter((x) => x.schema.startsWith('user_identify'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('posthog-node', () => {
  it('delivers capture, $pageview, identify and alias with the right user, feature and profile', async () => {
    const client = new PostHog(WRITE_KEY, { host: c.url, flushAt: 20, flushInterval: 100 });
    const user = `ph-${randomUUID()}`;
    const searchId = randomUUID();
    client.identify({
      distinctId: user,
      properties: {
        $set: { plan: 'pro', createdAt: '2025-01-02T03:04:05Z' },
        $set_once: { first_touch: 'ad' },
        $anon_distinct_id: `${user}-anon`,
      },
    });
    client.capture({
      distinctId: user,
      event: 'Search Performed',
      uuid: searchId,
      properties: { feature: 'search', query: 'q' },
    });
    client.capture({
      distinctId: user,
      event: '$pageview',
      properties: { $current_url: 'https://app.example/pricing/plans' },
    });
    client.alias({ distinctId: user, alias: `${user}-old` });
    await client.shutdown();

    const mine = byUser(user);
    const all = mine(await reader.waitFor((m) => mine(m).length >= 4));
    expect(all).toHaveLength(4);
    const acts = activities(all);
    expect(acts.map((x) => [x.value.activity_name, x.value.feature_name]).sort()).toEqual([
      ['Search Performed', 'search'],
      // POSTHOG_FEATURE_FROM=property,map,path: the page's first path segment.
      ['page_view', 'pricing'],
    ]);
    for (const a of acts) {
      // posthog-node's User-Agent is a server relaying its users, not a bot.
      expect(a.value).toMatchObject({
        source: SOURCE,
        device_type: 'server',
        is_bot: false,
        anonymous_id: null,
      });
    }
    const search = acts.find((x) => x.value.activity_name === 'Search Performed');
    expect(search?.value.event_id).toBe(searchId);
    expect(JSON.parse(search?.value.activity_metadata as string)).toEqual({ feature: 'search', query: 'q' });
    const pageview = acts.find((x) => x.value.activity_name === 'page_view');
    expect(JSON.parse(pageview?.value.activity_metadata as string)).toEqual({
      url: 'https://app.example/pricing/plans',
    });

    const ids = identifies(all);
    const identify = ids.find((x) => x.value.kind === 'identify');
    expect(identify?.value).toMatchObject({ anonymous_id: `${user}-anon`, source: SOURCE });
    expect(identify?.value.registration_date).toBe(Date.parse('2025-01-02T03:04:05Z'));
    expect(JSON.parse(identify?.value.user_attributes as string)).toEqual({ plan: 'pro', first_touch: 'ad' });
    expect(ids.find((x) => x.value.kind === 'alias')?.value.previous_id).toBe(`${user}-old`);
  });

  it('resends a batch answered 503; the event lands once, with its id', async () => {
    const client = new PostHog(WRITE_KEY, { host: c.url, flushAt: 20, flushInterval: 100 });
    const user = `ph-retry-${randomUUID()}`;
    const uuid = randomUUID();
    refusals.keys.add(user);
    const before = refusals.refused;
    client.capture({ distinctId: user, event: 'Export Started', uuid, properties: { feature: 'export' } });
    await client.shutdown();
    expect(refusals.refused - before).toBe(1);
    await reader.waitFor((m) => m.some((x) => x.value.event_id === uuid));
    await sleep(500);
    const landed = reader.messages.filter((x) => x.value.event_id === uuid);
    expect(landed.map((x) => [x.value.user_id, x.value.activity_name, x.value.feature_name])).toEqual([
      [user, 'Export Started', 'export'],
    ]);
  });
});

/** The slice of posthog-js's API the page uses (the bundle sets window.posthog). */
interface PageHog {
  init(token: string, config: Record<string, unknown>): void;
  capture(event: string, properties?: Record<string, unknown>, options?: { uuid?: string }): void;
  identify(id: string, set?: Record<string, unknown>, setOnce?: Record<string, unknown>): void;
  get_distinct_id(): string;
  get_session_id(): string;
}
declare const posthog: PageHog;

const meta = (m: Decoded | undefined) => JSON.parse((m?.value.activity_metadata as string) ?? 'null');

describe('posthog-js in Chromium', () => {
  it('delivers the page view, custom events and an identify with the session, device and profile', async () => {
    chromium ??= await launchChromium((line) => process.stderr.write(`[chromium] ${line}\n`));
    const page = await chromium.context.newPage();
    const sent: Array<{ method: string; path: string; gzip: boolean }> = [];
    const statuses: number[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(c.url)) return;
      const body = r.postDataBuffer();
      sent.push({
        method: r.method(),
        path: new URL(r.url()).pathname,
        gzip: body !== null && body[0] === 0x1f && body[1] === 0x8b,
      });
    });
    page.on('response', (r) => {
      if (r.url().startsWith(c.url)) statuses.push(r.status());
    });
    await page.goto(`${siteUrl}/reports/weekly`);
    // Unchanged but for the host and key; headless Chromium looks like a bot to posthog-js, which
    // drops its events unless told otherwise (PostHog's advice for end-to-end tests).
    const anon = await page.evaluate(
      ({ host, key }) =>
        new Promise<string>((resolve) =>
          posthog.init(key, {
            api_host: host,
            opt_out_useragent_filter: true,
            loaded: (ph: PageHog) => resolve(ph.get_distinct_id()),
          }),
        ),
      { host: c.url, key: WRITE_KEY },
    );
    // posthog-js captures its initial page view on its own schedule: wait until it has landed, so
    // it is sent as the anonymous visitor before the identify below (else the two race).
    await reader.waitFor((m) =>
      m.some((x) => x.value.anonymous_id === anon && x.value.activity_name === 'page_view'),
    );
    const user = `phjs-${randomUUID()}`;
    const session = await page.evaluate((id) => {
      posthog.capture('Report Exported', { feature: 'reports', format: 'csv' });
      posthog.identify(id, { plan: 'pro' }, { first_touch: 'ad' });
      posthog.capture('Report Shared', { feature: 'reports' });
      return posthog.get_session_id();
    }, user);

    const wanted = (m: readonly Decoded[]) =>
      m.filter((x) => x.value.anonymous_id === anon || x.value.user_id === user);
    const all = wanted(await reader.waitFor((m) => wanted(m).length >= 4));
    const acts = activities(all);
    const pageview = acts.find((x) => x.value.activity_name === 'page_view');
    expect(pageview?.value).toMatchObject({
      user_id: null,
      anonymous_id: anon,
      // POSTHOG_FEATURE_FROM=property,map,path: /reports/weekly.
      feature_name: 'reports',
      device_id: anon,
      device_type: 'desktop',
      platform: 'web',
      source: SOURCE,
      // posthog-js was told to send from headless Chromium; the collector still knows a bot.
      is_bot: true,
    });
    expect(pageview?.value.browser_name).toEqual(expect.stringMatching(/Chrom/));
    expect(meta(pageview)).toMatchObject({
      title: 'Reports',
      path: '/reports/weekly',
      url: `${siteUrl}/reports/weekly`,
      _session_id: session,
    });
    const exported = acts.find((x) => x.value.activity_name === 'Report Exported');
    expect(exported?.value).toMatchObject({ user_id: null, anonymous_id: anon, feature_name: 'reports' });
    expect(meta(exported)).toMatchObject({ format: 'csv', _session_id: session });
    // After identify: the user, and the anonymous id the browser had before.
    const shared = acts.find((x) => x.value.activity_name === 'Report Shared');
    expect(shared?.value).toMatchObject({ user_id: user, anonymous_id: anon, feature_name: 'reports' });
    expect(shared?.value.session_id).toBe(pageview?.value.session_id);
    expect(pageview?.value.session_id).not.toBeNull();

    const identify = identifies(all).find((x) => x.value.kind === 'identify');
    expect(identify?.value).toMatchObject({ user_id: user, anonymous_id: anon });
    expect(JSON.parse(identify?.value.user_attributes as string)).toEqual({ plan: 'pro', first_touch: 'ad' });

    // The project config came from the collector as a script; events were gzip bodies to /e/;
    // nothing was refused (posthog-js drops what is answered 4xx).
    expect(sent).toContainEqual({ method: 'GET', path: `/array/${WRITE_KEY}/config.js`, gzip: false });
    expect(sent.filter((r) => r.path === '/e/').some((r) => r.gzip)).toBe(true);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);

    // Retry: the next publish for this user is refused once (503); posthog-js queues the request
    // and resends it, and the event lands once with its id.
    const uuid = randomUUID();
    const before = refusals.refused;
    refusals.keys.add(user);
    await page.evaluate(
      (id) => posthog.capture('Report Scheduled', { feature: 'reports' }, { uuid: id }),
      uuid,
    );
    await reader.waitFor((m) => m.some((x) => x.value.event_id === uuid));
    expect(refusals.refused - before).toBe(1);
    expect(statuses).toContain(503);
    await sleep(500);
    expect(reader.messages.filter((x) => x.value.event_id === uuid).map((x) => x.value.user_id)).toEqual([
      user,
    ]);
    await page.close();
  });
});

describe('the capture API as the SDKs meet it', () => {
  const event = (user: string, uuid: string, extra: Record<string, unknown> = {}) => ({
    event: 'Invoice Sent',
    uuid,
    properties: { distinct_id: user, token: WRITE_KEY, feature: 'billing', ...extra },
  });

  it('takes a base64 form body (sendBeacon), and refuses a bad event alone with 200 for the rest', async () => {
    const user = `ph-api-${randomUUID()}`;
    const [good, beacon] = [randomUUID(), randomUUID()];
    const form = `data=${encodeURIComponent(Buffer.from(JSON.stringify([event(user, beacon)])).toString('base64'))}`;
    const b = await post(`${c.url}/e/?compression=base64`, form, {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: '',
    });
    expect(b.status).toBe(200);
    const r = await post(
      `${c.url}/batch/`,
      { api_key: WRITE_KEY, batch: [event(user, good), { event: 'Invoice Sent', uuid: randomUUID() }] },
      { authorization: '' },
    );
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      accepted: 1,
      rejected: [{ index: 1, errors: ['distinct_id: required'] }],
    });
    const landed = await reader.waitFor((m) =>
      [good, beacon].every((id) => m.some((x) => x.value.event_id === id)),
    );
    expect(landed.filter((x) => x.value.user_id === user).map((x) => x.value.feature_name)).toEqual([
      'billing',
      'billing',
    ]);
    // Nothing valid: a final 400 (the SDKs drop it); an unknown project token: 401.
    expect((await post(`${c.url}/batch/`, { api_key: WRITE_KEY, batch: [{ event: 'x' }] })).status).toBe(400);
    expect(
      (
        await post(
          `${c.url}/batch/`,
          { api_key: 'nope', batch: [event(user, randomUUID())] },
          { authorization: '' },
        )
      ).status,
    ).toBe(401);
  });

  it('answers a rate-limit refusal 503 with Retry-After, which posthog-js retries (a 429 it would drop)', async () => {
    const limited = await startCollector(kafkaBrokers(), { RATE_LIMIT_PER_ADDRESS_MAX: '1' }, { geo: false });
    try {
      const body = { api_key: WRITE_KEY, batch: [event(`ph-rl-${randomUUID()}`, randomUUID())] };
      expect((await post(`${limited.url}/e/`, body, { authorization: '' })).status).toBe(200);
      const refused = await post(`${limited.url}/e/`, body, { authorization: '' });
      expect(refused.status).toBe(503);
      expect(refused.body.code).toBe('COLLECTOR_RATE_LIMITED');
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    } finally {
      await limited.close();
    }
  });
});

it('the query API counts every user the SDKs delivered', async () => {
  await expectCountedByQueryApi(t.setup, reader.messages);
});
