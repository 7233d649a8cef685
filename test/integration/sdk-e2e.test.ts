/**
 * The four SDK families' Node SDKs, unchanged but for the host and key, end to end: each identifies
 * a user with a profile and sends an event naming a feature; the collector publishes, the consumer
 * writes, and the query API counts each user once under its feature today, and each profile is in
 * dim_users. (The collector-*.test.ts files check each family's mapping on the topic in detail, the
 * browser SDKs included.)
 */
import { randomUUID } from 'node:crypto';
import { createInstance, Identify } from '@amplitude/analytics-node';
import RudderAnalytics from '@rudderstack/rudder-sdk-node';
import { Analytics } from '@segment/analytics-node';
import { PostHog } from 'posthog-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { localDay } from '../../services/lib/finished-days.ts';
import { quoteString } from '../../services/lib/sql.ts';
import { waitFor } from '../harness/consumer-process.ts';
import { type Pipeline, profilesOf, startPipeline, waitForNoLag } from '../harness/pipeline.ts';
import { WRITE_KEY } from './collector-harness.ts';
import { startQueryApi } from './query-harness.ts';

let p: Pipeline;

beforeAll(async () => {
  p = await startPipeline('sdk_e2e');
}, 120_000);
afterAll(async () => {
  await p?.close();
});

it('Segment, RudderStack, PostHog and Amplitude Node SDKs: users counted under their feature, profiles kept', async () => {
  const run = randomUUID().slice(0, 8);
  const user = (family: string) => `e2e-${family}-${run}`;
  const url = p.collector.url;

  const segment = new Analytics({ writeKey: WRITE_KEY, host: url, flushAt: 10, flushInterval: 100 });
  segment.identify({ userId: user('segment'), traits: { segment: 'pro' } });
  segment.track({
    userId: user('segment'),
    event: 'Search Performed',
    properties: { feature: 'sdk-segment' },
  });
  await segment.closeAndFlush({ timeout: 30_000 });

  const rudder = new RudderAnalytics(WRITE_KEY, { dataPlaneUrl: url, flushAt: 10, flushInterval: 100 });
  rudder.identify({ userId: user('rudderstack'), traits: { segment: 'pro' } });
  rudder.track({
    userId: user('rudderstack'),
    event: 'Search Performed',
    properties: { feature: 'sdk-rudderstack' },
  });
  await new Promise<void>((resolve, reject) =>
    rudder.flush((err?: unknown) => (err ? reject(err as Error) : resolve())),
  );

  const posthog = new PostHog(WRITE_KEY, { host: url, flushAt: 10, flushInterval: 100 });
  posthog.identify({ distinctId: user('posthog'), properties: { $set: { segment: 'pro' } } });
  posthog.capture({
    distinctId: user('posthog'),
    event: 'Search Performed',
    properties: { feature: 'sdk-posthog' },
  });
  await posthog.shutdown();

  const amplitude = createInstance();
  await amplitude.init(WRITE_KEY, { serverUrl: `${url}/2/httpapi`, flushIntervalMillis: 50 }).promise;
  const sent = await Promise.all([
    amplitude.identify(new Identify().set('segment', 'pro'), { user_id: user('amplitude') }).promise,
    amplitude.track('Search Performed', { feature: 'sdk-amplitude' }, { user_id: user('amplitude') }).promise,
  ]);
  expect(sent.map((r) => r.code)).toEqual([200, 200]);

  const families = ['segment', 'rudderstack', 'posthog', 'amplitude'];
  const users = families.map(user);
  await waitFor(
    'every family written',
    async () => {
      const rs = await p.setup.db.client.query({
        query: `SELECT DISTINCT actor_id FROM fact_user_activity WHERE actor_id IN (${users.map(quoteString).join(', ')})`,
        format: 'JSONEachRow',
      });
      return (await rs.json()).length;
    },
    (n) => n === users.length,
    90_000,
  );
  // Facts are visible while the insert still runs the views the API reads: wait for the commit.
  expect((await waitForNoLag(p, 60_000)).lag).toBe(0);
  expect(await profilesOf(p.setup.db.client, users)).toEqual(new Set(users));

  const api = await startQueryApi(p.setup.db.name, new Date());
  try {
    const today = localDay(Date.now(), 'UTC');
    const features = families.map((f) => `feature=sdk-${f}`).join('&');
    const r = await api.get(`/v1/active-users?from=${today}&to=${today}&group_by=feature&${features}`);
    expect(r.status).toBe(200);
    const rows = r.body.rows as { feature: string; dau: number; exact: boolean }[];
    expect(Object.fromEntries(rows.map((x) => [x.feature, x.dau]))).toEqual(
      Object.fromEntries(families.map((f) => [`sdk-${f}`, 1])),
    );
  } finally {
    await api.close();
  }
});
