/**
 * The official @segment/analytics-node SDK, pointed at the collector and otherwise unchanged, sends
 * track/identify/page/alias; the records on the topic carry the right ids, times and mapped fields.
 */
import { Analytics } from '@segment/analytics-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventIdFor } from '../../services/collector/segment/map.ts';
import { kafkaBrokers } from '../harness/services.ts';
import {
  type Decoded,
  post,
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
  c = await startCollector(kafkaBrokers(), { FEATURE_MAP: 'Signed Up=onboarding' }, { sink: refusals.wrap });
  reader = await readTopic(c.kafka, c.topic);
});
afterAll(async () => {
  await reader?.stop();
  await c?.close();
});

async function landed(eventId: string): Promise<Decoded> {
  const all = await reader.waitFor((m) => m.some((x) => x.value.event_id === eventId));
  return all.find((x) => x.value.event_id === eventId) as Decoded;
}

describe('@segment/analytics-node', () => {
  it('delivers track, identify, page and alias through the SDK unchanged', async () => {
    const analytics = new Analytics({
      writeKey: WRITE_KEY,
      host: c.url,
      flushAt: 10,
      flushInterval: 200,
      maxRetries: 0,
    });
    const errors: unknown[] = [];
    analytics.on('error', (err) => errors.push(err));
    const ids: Record<string, string> = {};
    const remember = (name: string) => (err?: unknown, ctx?: { event: { messageId?: string } }) => {
      if (err) errors.push(err);
      ids[name] = ctx?.event.messageId ?? '';
    };
    const when = new Date(Date.now() - 60_000);
    analytics.track(
      {
        userId: 'seg-user',
        event: 'Search Performed',
        properties: { feature: 'search', query: 'q' },
        timestamp: when,
      },
      remember('track'),
    );
    analytics.track({ anonymousId: 'seg-anon', event: 'Signed Up' }, remember('mapped'));
    analytics.identify(
      { userId: 'seg-user', traits: { createdAt: '2024-03-04T05:06:07Z', gender: 'male', plan: 'team' } },
      remember('identify'),
    );
    analytics.page(
      { userId: 'seg-user', name: 'Pricing', properties: { url: 'https://x.example/pricing' } },
      remember('page'),
    );
    analytics.alias({ userId: 'seg-user', previousId: 'seg-anon' }, remember('alias'));
    await analytics.closeAndFlush({ timeout: 30_000 });
    expect(errors).toEqual([]);

    const track = await landed(eventIdFor(ids.track) ?? '');
    expect(track.key).toBe('seg-user');
    expect(track.value).toMatchObject({
      source: SOURCE,
      activity_name: 'Search Performed',
      feature_name: 'search',
      original_timestamp: when.getTime(),
      activity_metadata: '{"feature":"search","query":"q"}',
      device_type: 'server',
      is_bot: false,
    });
    expect(track.value.sent_at).toEqual(expect.any(Number));

    expect((await landed(eventIdFor(ids.mapped) ?? '')).value).toMatchObject({
      anonymous_id: 'seg-anon',
      activity_name: 'Signed Up',
      feature_name: 'onboarding',
    });

    const identify = await landed(eventIdFor(ids.identify) ?? '');
    expect(identify.schema).toBe('user_identify.v1');
    expect(identify.value).toMatchObject({
      kind: 'identify',
      user_id: 'seg-user',
      registration_date: Date.UTC(2024, 2, 4, 5, 6, 7),
      gender: 'male',
      user_attributes: '{"plan":"team"}',
    });

    expect((await landed(eventIdFor(ids.page) ?? '')).value).toMatchObject({
      activity_name: 'page_view',
      activity_metadata: '{"url":"https://x.example/pricing","name":"Pricing"}',
    });

    const alias = await landed(eventIdFor(ids.alias) ?? '');
    expect(alias.value).toMatchObject({ kind: 'alias', user_id: 'seg-user', previous_id: 'seg-anon' });
    // Same key as the user's events: identity changes stay ordered with the activity.
    expect(alias.key).toBe('seg-user');
    expect(alias.partition).toBe(track.partition);
  });
});

describe('Segment HTTP API', () => {
  const basic = { authorization: `Basic ${Buffer.from(`${WRITE_KEY}:`).toString('base64')}` };

  it('maps context (device, os, app, ip, user agent) from a raw /v1/batch', async () => {
    const messageId = 'msg-ctx-1';
    const r = await post(
      `${c.url}/v1/batch`,
      {
        sentAt: new Date().toISOString(),
        context: { ip: '8.8.8.8' },
        batch: [
          {
            type: 'screen',
            messageId,
            userId: 'm1',
            name: 'Home',
            context: {
              device: { id: 'dev-9', type: 'android' },
              os: { name: 'Android', version: '14' },
              app: { version: '5.1' },
            },
          },
          { type: 'unknown-type', userId: 'm1' },
        ],
      },
      basic,
    );
    expect(r.status).toBe(200);
    expect(r.body.accepted).toBe(1);
    expect(r.body.rejected?.[0]).toMatchObject({
      index: 1,
      errors: ['type: expected one of track, page, screen, identify, group, alias'],
    });
    const m = await landed(eventIdFor(messageId) ?? '');
    expect(m.value).toMatchObject({
      activity_name: 'screen_view',
      device_id: 'dev-9',
      device_type: 'mobile',
      platform: 'android',
      os_version: 'Android 14',
      app_version: '5.1',
      country_code: 'US',
      continent_code: 'NA',
      client_ip: '8.8.8.0',
    });
  });

  it('takes a Segment identify body on /v1/identify, the path the native API shares', async () => {
    const r = await post(
      `${c.url}/v1/identify`,
      { messageId: 'msg-id-1', userId: 'seg-2', anonymousId: 'anon-2', traits: { gender: 'f' } },
      basic,
    );
    expect(r.status).toBe(200);
    const m = await landed(eventIdFor('msg-id-1') ?? '');
    expect(m.schema).toBe('user_identify.v1');
    expect(m.value).toMatchObject({
      kind: 'identify',
      user_id: 'seg-2',
      anonymous_id: 'anon-2',
      gender: 'f',
    });
  });

  it('accepts /v1/track and /v1/group with Basic auth and rejects a bad key', async () => {
    const track = await post(
      `${c.url}/v1/track`,
      { messageId: 'msg-t', userId: 'g1', event: 'Clicked' },
      basic,
    );
    expect(track.status).toBe(200);
    const group = await post(
      `${c.url}/v1/group`,
      { messageId: 'msg-g', userId: 'g1', groupId: 'acme', traits: { size: 5 } },
      basic,
    );
    expect(group.status).toBe(200);
    expect((await landed(eventIdFor('msg-g') ?? '')).value).toMatchObject({
      activity_name: 'group',
      activity_metadata: '{"group_id":"acme","group_traits":{"size":5}}',
    });
    const bad = await post(
      `${c.url}/v1/track`,
      { userId: 'g1', event: 'x' },
      { authorization: `Basic ${Buffer.from('nope:').toString('base64')}` },
    );
    expect(bad.status).toBe(401);
  });
});

it('@segment/analytics-node resends a batch answered 503 once, and its event lands once', async () => {
  const user = `seg-retry-${crypto.randomUUID()}`;
  refusals.keys.add(user);
  const analytics = new Analytics({ writeKey: WRITE_KEY, host: c.url, flushAt: 1, maxRetries: 3 });
  const errors: unknown[] = [];
  analytics.on('error', (err) => errors.push(err));
  analytics.track({ userId: user, event: 'Retry Me', properties: { feature: 'retry' } });
  await analytics.closeAndFlush({ timeout: 30_000 });
  expect(errors).toEqual([]);
  expect(refusals.keys.has(user)).toBe(false); // the first attempt was refused
  const mine = (m: readonly Decoded[]) => m.filter((x) => x.value.user_id === user);
  await reader.waitFor((m) => mine(m).length >= 1);
  await new Promise((r) => setTimeout(r, 1_500));
  expect(mine(reader.messages)).toHaveLength(1);
});
