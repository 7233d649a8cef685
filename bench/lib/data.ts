/**
 * What the scenarios send: native JSON request bodies for the collector, Avro messages for Kafka
 * (encoded with the contract's codec, shaped like the collector's enriched output). The synthetic
 * load generated inside ClickHouse (query, accuracy and ladder scenarios) is test/fixtures/synthetic.ts.
 */
import { randomUUID } from 'node:crypto';
import { activity, codec, encoded, type RawMessage } from '../../test/fixtures/records.ts';
import { COUNTRIES, FEATURES, PLATFORMS } from '../../test/fixtures/synthetic.ts';

export type { RawMessage };
export { codec };

const UA =
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36';

export const WRITE_KEY = 'bench-key';

const pick = <T>(xs: readonly T[], i: number): T => xs[i % xs.length] as T;

/** One native-API event as an SDK sends it (no event_id: the collector generates one). */
export function nativeEvent(i: number, feature?: string): Record<string, unknown> {
  return {
    user_id: `user-${i % 10_000}`,
    activity: 'view',
    feature: feature ?? pick(FEATURES, i),
    timestamp: new Date().toISOString(),
    session_id: 1_700_000_000_000 + (i % 1000),
    device: { type: 'desktop', platform: pick(PLATFORMS, i), app_version: '2.0.0' },
    geo: { country_code: pick(COUNTRIES, i) },
    user: { segment: 'pro', gender: 'female', birth_date: '1990-05-01' },
    properties: { plan: 'pro', page: '/search', referrer: 'https://example.com/' },
  };
}

/** `count` distinct bodies: a single event each, or `perRequest` events in `{ events: [...] }`. */
export function nativeBodies(count: number, perRequest: number): string[] {
  return Array.from({ length: count }, (_, b) => {
    if (perRequest === 1) return JSON.stringify(nativeEvent(b));
    const events = Array.from({ length: perRequest }, (_, j) => nativeEvent(b * perRequest + j));
    return JSON.stringify({ events });
  });
}

export const REQUEST_HEADERS = {
  'content-type': 'application/json',
  authorization: `Bearer ${WRITE_KEY}`,
  'user-agent': UA,
};

/** An Avro activity message as the collector publishes it after enrichment (fresh event_id). */
export function avroActivity(i: number, nowMs: number = Date.now()): RawMessage {
  return encoded(
    'user_activity',
    activity({
      event_id: randomUUID(),
      source: 'bench',
      received_at: nowMs,
      sent_at: nowMs,
      original_timestamp: nowMs,
      activity_timestamp: nowMs,
      user_id: `user-${i % 10_000}`,
      session_id: 1_700_000_000_000 + (i % 1000),
      feature_name: pick(FEATURES, i),
      device_type: 'desktop',
      platform: pick(PLATFORMS, i),
      app_version: '2.0.0',
      browser_name: 'Chrome',
      browser_version: '131.0',
      os_version: 'macOS 10.15.7',
      country_code: pick(COUNTRIES, i),
      city_name: 'Berlin',
      segment_name: 'pro',
      gender: 'female',
      client_ip: '203.0.113.0',
      user_agent: UA,
      activity_metadata: '{"plan":"pro","page":"/search","referrer":"https://example.com/"}',
    }),
  );
}

export function avroMessages(n: number): RawMessage[] {
  const now = Date.now();
  return Array.from({ length: n }, (_, i) => avroActivity(i, now));
}

/**
 * `n` activity messages from `n` distinct user ids nobody has seen (18 characters, like
 * `sqmx2bvuw9_u535865`), without profile attributes, as an SDK's track call arrives: the load that
 * makes every id of a batch a cache miss for the consumer's identity and profile context.
 */
export function avroNewUserMessages(n: number): RawMessage[] {
  const tag = randomUUID().replace(/-/g, '').slice(0, 10);
  const now = Date.now();
  return Array.from({ length: n }, (_, i) =>
    encoded(
      'user_activity',
      activity({
        event_id: randomUUID(),
        source: 'bench',
        received_at: now,
        activity_timestamp: now,
        user_id: `${tag}_u${String(i).padStart(6, '0')}`,
        feature_name: pick(FEATURES, i),
        platform: pick(PLATFORMS, i),
        country_code: pick(COUNTRIES, i),
        user_agent: UA,
      }),
    ),
  );
}
