/**
 * The official @rudderstack/rudder-sdk-node SDK, pointed at the collector (`dataPlaneUrl`) and
 * otherwise unchanged. It posts gzip-compressed JSON to /v1/batch declared as
 * application/x-www-form-urlencoded, with the write key as HTTP Basic user: what RudderStack's own
 * server takes, and what the collector answered with 415 before it read JSON whatever the declared
 * type. Track, identify, page and alias land with the right ids and mapped fields.
 */
import RudderAnalytics from '@rudderstack/rudder-sdk-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kafkaBrokers } from '../harness/services.ts';
import {
  type Decoded,
  RefuseOnce,
  readTopic,
  SOURCE,
  startCollector,
  type TestCollector,
  type TopicReader,
  WRITE_KEY,
} from './collector-harness.ts';

let c: TestCollector;
let reader: TopicReader;
const refusals = new RefuseOnce();

beforeAll(async () => {
  c = await startCollector(kafkaBrokers(), {}, { geo: false, sink: refusals.wrap });
  reader = await readTopic(c.kafka, c.topic);
});
afterAll(async () => {
  await reader?.stop();
  await c?.close();
});

describe('@rudderstack/rudder-sdk-node', () => {
  it('delivers track, identify, page and alias through the SDK unchanged', async () => {
    const client = new RudderAnalytics(WRITE_KEY, { dataPlaneUrl: c.url, flushAt: 20, flushInterval: 200 });
    const user = `rs-${crypto.randomUUID()}`;
    client.identify({ userId: user, anonymousId: `${user}-anon`, traits: { plan: 'pro' } });
    client.track({ userId: user, event: 'Search Performed', properties: { feature: 'search', query: 'q' } });
    client.page({ userId: user, name: 'Pricing', properties: { feature: 'pricing' } });
    client.alias({ userId: user, previousId: `${user}-old` });
    await new Promise<void>((resolve, reject) =>
      client.flush((err?: unknown) => (err ? reject(err as Error) : resolve())),
    );
    const mine = (m: readonly Decoded[]) => m.filter((x) => x.value.user_id === user);
    const all = mine(await reader.waitFor((m) => mine(m).length >= 4));
    const activities = all.filter((x) => x.schema.startsWith('user_activity'));
    expect(
      activities.map((x) => [x.value.activity_name, x.value.feature_name, x.value.source]).sort(),
    ).toEqual(
      [
        ['Search Performed', 'search', SOURCE],
        ['page_view', 'pricing', SOURCE],
      ].sort(),
    );
    const identifies = all.filter((x) => x.schema.startsWith('user_identify'));
    expect(identifies.map((x) => [x.value.kind, x.value.anonymous_id ?? x.value.previous_id]).sort()).toEqual(
      [
        ['alias', `${user}-old`],
        ['identify', `${user}-anon`],
      ].sort(),
    );
  });
});

it('@rudderstack/rudder-sdk-node resends a batch answered 503 once, and its event lands once', async () => {
  const user = `rs-retry-${crypto.randomUUID()}`;
  refusals.keys.add(user);
  const client = new RudderAnalytics(WRITE_KEY, { dataPlaneUrl: c.url, flushAt: 1, flushInterval: 100 });
  client.track({ userId: user, event: 'Retry Me', properties: { feature: 'retry' } });
  await new Promise<void>((resolve, reject) =>
    client.flush((err?: unknown) => (err ? reject(err as Error) : resolve())),
  );
  const mine = (m: readonly Decoded[]) => m.filter((x) => x.value.user_id === user);
  await reader.waitFor((m) => mine(m).length >= 1);
  expect(refusals.keys.has(user)).toBe(false); // the first attempt was refused
  await new Promise((r) => setTimeout(r, 1_500));
  expect(mine(reader.messages)).toHaveLength(1);
});
