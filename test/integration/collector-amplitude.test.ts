/**
 * Amplitude's official SDKs, pointed at the collector (`serverUrl`) and otherwise unchanged:
 * @amplitude/analytics-node in this process, @amplitude/analytics-browser (the package's own UMD
 * build) in headless Chromium on a page from another origin. Track, identify (user properties) and
 * sessions land with the right user, device, feature, session and profile fields, each once:
 * after a 503 the SDKs resend and the event lands once with its insert_id as event id; after a
 * 400 naming one bad event the SDK drops that one and resends the rest, which lands once.
 * (flushIntervalMillis is shortened only so the tests do not wait the SDKs' default 1-10 s.)
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createInstance, Identify } from '@amplitude/analytics-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LaunchedBrowser, launchChromium, sdkSite } from '../harness/chromium.ts';
import { type CountedCollector, expectCountedByQueryApi, startCountedCollector } from '../harness/counted.ts';
import { kafkaBrokers } from '../harness/services.ts';
import {
  BROWSER_KEY,
  type Decoded,
  FailOncePaths,
  readTopic,
  SOURCE,
  startCollector,
  type TestCollector,
  type TopicReader,
  WRITE_KEY,
} from './collector-harness.ts';

let t: CountedCollector;
let c: TestCollector;
let reader: TopicReader;
const faults = new FailOncePaths();
const failOnce = faults.paths;
const posts = faults.posts;

beforeAll(async () => {
  // A real consumer reads the collector's topic: the last test counts the users in the query API.
  t = await startCountedCollector('amplitude', {}, { onRequest: faults.hook });
  ({ collector: c, reader } = t);
});
afterAll(async () => {
  await t?.close();
});

const ofUser = (user: string) => (m: readonly Decoded[]) => m.filter((x) => x.value.user_id === user);
const activities = (m: readonly Decoded[]) => m.filter((x) => x.schema.startsWith('user_activity'));
const identifies = (m: readonly Decoded[]) => m.filter((x) => x.schema.startsWith('user_identify'));
/** Waits a little past the point where an event would have arrived, so "exactly once" means it. */
const settle = () => new Promise((r) => setTimeout(r, 1_500));

async function nodeClient(path = '/2/httpapi') {
  const client = createInstance();
  await client.init(WRITE_KEY, { serverUrl: `${c.url}${path}`, flushIntervalMillis: 50 }).promise;
  return client;
}

describe('@amplitude/analytics-node', () => {
  it('delivers track, identify with user properties and a session', async () => {
    const client = await nodeClient();
    const user = `amp-${randomUUID()}`;
    const device = `device-${randomUUID()}`;
    const session = Date.now() - 60_000;
    const identify = new Identify()
      .set('plan', 'pro')
      .set('gender', 'f')
      .setOnce('initial_source', 'ads')
      .add('logins', 1);
    const [id, search, pricing] = await Promise.all([
      client.identify(identify, { user_id: user, device_id: device }).promise,
      client.track(
        'Search Performed',
        { feature: 'search', query: 'q' },
        { user_id: user, device_id: device, session_id: session },
      ).promise,
      client.track('Pricing Viewed', undefined, {
        user_id: user,
        device_id: device,
        session_id: session,
        platform: 'iOS',
        os_name: 'iOS',
        os_version: '17.4',
        app_version: '3.1',
      }).promise,
    ]);
    expect([id.code, search.code, pricing.code]).toEqual([200, 200, 200]);
    const all = ofUser(user)(await reader.waitFor((m) => ofUser(user)(m).length >= 3));
    const byName = new Map(activities(all).map((x) => [x.value.activity_name, x.value]));
    expect(byName.get('Search Performed')).toMatchObject({
      event_id: search.event.insert_id,
      source: SOURCE,
      anonymous_id: device,
      device_id: device,
      feature_name: 'search',
      session_id: session,
    });
    expect(JSON.parse(String(byName.get('Search Performed')?.activity_metadata))).toEqual({
      feature: 'search',
      query: 'q',
    });
    expect(byName.get('Pricing Viewed')).toMatchObject({
      event_id: pricing.event.insert_id,
      feature_name: '',
      session_id: session,
      device_type: 'mobile',
      platform: 'ios',
      os_version: 'iOS 17.4',
      app_version: '3.1',
    });
    const [profile] = identifies(all);
    expect(profile?.value).toMatchObject({
      event_id: id.event.insert_id,
      kind: 'identify',
      anonymous_id: device,
      gender: 'f',
    });
    // $setOnce is stored like $set; $add needs the old value and is not applied.
    expect(JSON.parse(String(profile?.value.user_attributes))).toEqual({
      plan: 'pro',
      initial_source: 'ads',
    });
  });

  it('uploads to the Batch API (a serverUrl ending in /batch; the SDK ignores useBatch once serverUrl is set)', async () => {
    const client = await nodeClient('/batch');
    const user = `amp-batch-${randomUUID()}`;
    const before = posts.get('/batch') ?? 0;
    const r = await client.track('Export Started', { feature: 'export' }, { user_id: user }).promise;
    expect(r.code).toBe(200);
    expect(posts.get('/batch')).toBe(before + 1);
    const [event] = await reader.waitFor((m) => ofUser(user)(m).length > 0).then(ofUser(user));
    expect(event?.value).toMatchObject({ event_id: r.event.insert_id, feature_name: 'export' });
  });

  it('resends after a 503 and the event lands once, with its insert_id as event id', async () => {
    const client = await nodeClient();
    const user = `amp-retry-${randomUUID()}`;
    const before = posts.get('/2/httpapi') ?? 0;
    failOnce.add('/2/httpapi');
    const r = await client.track('Report Viewed', { feature: 'reports' }, { user_id: user }).promise;
    expect(r.code).toBe(200);
    expect(failOnce.size).toBe(0);
    expect(posts.get('/2/httpapi')).toBe(before + 2);
    await reader.waitFor((m) => ofUser(user)(m).length > 0);
    await settle();
    expect(ofUser(user)(reader.messages).map((x) => x.value.event_id)).toEqual([r.event.insert_id]);
  });

  it('after a 400 naming one bad event, drops it and resends the rest, which lands once', async () => {
    const client = await nodeClient();
    const user = `amp-400-${randomUUID()}`;
    const before = posts.get('/2/httpapi') ?? 0;
    // Sent in one upload: two years old is past MAX_EVENT_AGE_DAYS, so the collector refuses it.
    const old = client.track('Old', undefined, { user_id: user, time: Date.now() - 2 * 365 * 86_400_000 });
    const fresh = client.track('Fresh', { feature: 'f' }, { user_id: user });
    const [oldResult, freshResult] = await Promise.all([old.promise, fresh.promise]);
    expect(oldResult.code).toBe(400);
    expect(freshResult.code).toBe(200);
    expect(posts.get('/2/httpapi')).toBe(before + 2);
    await reader.waitFor((m) => ofUser(user)(m).length > 0);
    await settle();
    expect(ofUser(user)(reader.messages).map((x) => [x.value.activity_name, x.value.event_id])).toEqual([
      ['Fresh', freshResult.event.insert_id],
    ]);
  });
});

describe("responses, as the SDKs read them (the status is the body's `code`)", () => {
  const upload = async (body: unknown, path = '/2/httpapi') => {
    const res = await fetch(`${c.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('answers a missing or unknown api_key as Amplitude does: 400, which the SDK does not retry', async () => {
    const events = [{ event_type: 'x', user_id: 'u' }];
    expect(await upload({ events })).toEqual({
      status: 400,
      body: {
        code: 400,
        error: 'Request missing required field',
        missing_field: 'api_key',
        error_code: 'COLLECTOR_UNAUTHORIZED',
      },
    });
    expect(await upload({ api_key: 'nope', events })).toEqual({
      status: 400,
      body: { code: 400, error: 'Invalid API key', error_code: 'COLLECTOR_UNAUTHORIZED' },
    });
  });

  it('names bad events per Amplitude field, missing apart from invalid, and ingests none of the request', async () => {
    const user = `amp-raw-${randomUUID()}`;
    const r = await upload({
      api_key: WRITE_KEY,
      events: [
        { event_type: 'ok', user_id: user },
        { user_id: user },
        { event_type: 'x', user_id: user, session_id: 1.5 },
      ],
    });
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({
      code: 400,
      error_code: 'COLLECTOR_INVALID_EVENTS',
      events_with_missing_fields: { event_type: [1] },
      events_with_invalid_fields: { session_id: [2] },
    });
    const ok = await upload({ api_key: WRITE_KEY, events: [{ event_type: 'ok', user_id: user }] }, '/batch');
    expect(ok.body).toMatchObject({ code: 200, events_ingested: 1 });
    await reader.waitFor((m) => ofUser(user)(m).length > 0);
    await settle();
    expect(ofUser(user)(reader.messages)).toHaveLength(1);
  });

  it('answers more events than MAX_BATCH_EVENTS with 413, on which the SDK halves its batch', async () => {
    const events = Array.from({ length: 2_501 }, () => ({ event_type: 'x', user_id: 'u' }));
    expect(await upload({ api_key: WRITE_KEY, events })).toMatchObject({
      status: 413,
      body: { code: 413, error_code: 'COLLECTOR_TOO_MANY_EVENTS' },
    });
  });
});

describe('@amplitude/analytics-browser in Chromium', () => {
  let site: Awaited<ReturnType<typeof sdkSite>>;
  let siteUrl: string;
  let chromium: LaunchedBrowser;

  beforeAll(async () => {
    const require = createRequire(import.meta.url);
    // The package's own browser build: what a page gets from its CDN or bundler, unchanged.
    const sdk = readFileSync(
      require.resolve('@amplitude/analytics-browser/lib/scripts/amplitude-min.umd.js'),
      'utf8',
    );
    site = await sdkSite(sdk);
    siteUrl = `${site.origin}/pricing`;
    chromium = await launchChromium((line) => process.stderr.write(`[chromium] ${line}\n`));
  }, 600_000);
  afterAll(async () => {
    await chromium?.close();
    await site?.close();
  });

  /** A fresh page with the SDK initialised; returns the page. */
  async function page(key: string) {
    const p = await chromium.context.newPage();
    await p.goto(siteUrl);
    await p.evaluate(
      ({ key, serverUrl }) =>
        (
          window as unknown as { amplitude: { init: (k: string, o: object) => { promise: Promise<void> } } }
        ).amplitude.init(key, { serverUrl, flushIntervalMillis: 100 }).promise,
      { key, serverUrl: `${c.url}/2/httpapi` },
    );
    return p;
  }

  type Result = { code: number; event: { insert_id: string; session_id: number; device_id: string } };

  it('delivers track and identify with the device, session and user properties', async () => {
    const p = await page(WRITE_KEY);
    const user = `amp-web-${randomUUID()}`;
    const [track, id] = await p.evaluate(async (user) => {
      const a = (window as unknown as { amplitude: Record<string, (...args: unknown[]) => unknown> })
        .amplitude as unknown as {
        setUserId: (u: string) => void;
        track: (n: string, p: object) => { promise: Promise<unknown> };
        identify: (i: unknown) => { promise: Promise<unknown> };
        Identify: new () => { set: (k: string, v: unknown) => unknown };
      };
      a.setUserId(user);
      const identify = new a.Identify();
      identify.set('plan', 'team');
      return Promise.all([
        a.track('Search Performed', { feature: 'search' }).promise,
        a.identify(identify).promise,
      ]);
    }, user);
    const t = track as Result;
    expect([t.code, (id as Result).code]).toEqual([200, 200]);
    const all = ofUser(user)(
      await reader.waitFor((m) => ofUser(user)(m).some((x) => x.value.activity_name === 'Search Performed')),
    );
    const search = activities(all).find((x) => x.value.activity_name === 'Search Performed');
    expect(search?.value).toMatchObject({
      event_id: t.event.insert_id,
      anonymous_id: t.event.device_id,
      device_id: t.event.device_id,
      feature_name: 'search',
      session_id: t.event.session_id,
      device_type: 'desktop',
      platform: 'web',
    });
    expect(search?.value.browser_name).toEqual(expect.stringMatching(/Chrom/));
    const profile = await reader
      .waitFor((m) => identifies(ofUser(user)(m)).length > 0)
      .then((m) => identifies(ofUser(user)(m)));
    expect(
      profile.map((x) => [x.value.anonymous_id, JSON.parse(String(x.value.user_attributes)).plan]),
    ).toEqual([[t.event.device_id, 'team']]);
    await p.close();
  });

  it('resends after a 503 and the event lands once', async () => {
    const p = await page(WRITE_KEY);
    const user = `amp-web-retry-${randomUUID()}`;
    failOnce.add('/2/httpapi');
    const r = (await p.evaluate(async (user) => {
      const a = (window as unknown as { amplitude: unknown }).amplitude as {
        track: (n: string, p: object, o: object) => { promise: Promise<unknown> };
      };
      return a.track('Report Viewed', { feature: 'reports' }, { user_id: user }).promise;
    }, user)) as Result;
    expect(r.code).toBe(200);
    expect(failOnce.size).toBe(0);
    await reader.waitFor((m) => ofUser(user)(m).length > 0);
    await settle();
    expect(ofUser(user)(reader.messages).map((x) => x.value.event_id)).toEqual([r.event.insert_id]);
    await p.close();
  });

  it('takes the feature from AMPLITUDE_FEATURE_PROPERTY: here the page path of its page views', async () => {
    const own = await startCollector(
      kafkaBrokers(),
      { AMPLITUDE_FEATURE_PROPERTY: '[Amplitude] Page Path' },
      { geo: false },
    );
    const ownReader = await readTopic(own.kafka, own.topic);
    try {
      const p = await chromium.context.newPage();
      await p.goto(siteUrl);
      await p.evaluate(
        ({ key, serverUrl }) =>
          (
            window as unknown as { amplitude: { init: (k: string, o: object) => { promise: Promise<void> } } }
          ).amplitude.init(key, { serverUrl, flushIntervalMillis: 100 }).promise,
        { key: WRITE_KEY, serverUrl: `${own.url}/2/httpapi` },
      );
      const [view] = await ownReader
        .waitFor((m) => m.some((x) => x.value.activity_name === '[Amplitude] Page Viewed'))
        .then((m) => m.filter((x) => x.value.activity_name === '[Amplitude] Page Viewed'));
      expect(view?.value.feature_name).toBe('/pricing');
      await p.close();
    } finally {
      await ownReader.stop();
      await own.close();
    }
  });

  it('with a track-only browser key, its identify is refused and dropped, its events land', async () => {
    const p = await page(BROWSER_KEY);
    const user = `amp-web-key-${randomUUID()}`;
    const [track, id] = (await p.evaluate(async (user) => {
      const a = (window as unknown as { amplitude: unknown }).amplitude as {
        setUserId: (u: string) => void;
        track: (n: string, p: object) => { promise: Promise<unknown> };
        identify: (i: unknown) => { promise: Promise<unknown> };
        Identify: new () => { set: (k: string, v: unknown) => unknown };
      };
      a.setUserId(user);
      const identify = new a.Identify();
      identify.set('plan', 'team');
      return Promise.all([a.track('Clicked', { feature: 'nav' }).promise, a.identify(identify).promise]);
    }, user)) as [Result, Result];
    expect([track.code, id.code]).toEqual([200, 400]);
    await reader.waitFor((m) => ofUser(user)(m).length > 0);
    await settle();
    expect(identifies(ofUser(user)(reader.messages))).toEqual([]);
    expect(
      activities(ofUser(user)(reader.messages)).filter((x) => x.value.activity_name === 'Clicked'),
    ).toHaveLength(1);
    await p.close();
  });
});

it('the query API counts every user the SDKs delivered', async () => {
  await expectCountedByQueryApi(t.setup, reader.messages);
});
