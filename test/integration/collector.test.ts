/**
 * The collector's HTTP contract against real Kafka: every accepted event is read back from the
 * topic and decoded, so a test passes only if the right bytes are durable in Kafka.
 */
import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventIdFor } from '../../services/collector/segment/map.ts';
import { sessionNumber } from '../../services/collector/validation/validate.ts';
import { slowRequest } from '../fixtures/slow-client.ts';
import { kafkaBrokers } from '../harness/services.ts';
import {
  type Decoded,
  post,
  readTopic,
  SOURCE,
  startCollector,
  type TestCollector,
  type TopicReader,
  WRITE_KEY,
} from './collector-harness.ts';

const CHROME_UA =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36';
const BOT_UA = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)';

let c: TestCollector;
let reader: TopicReader;

beforeAll(async () => {
  c = await startCollector(kafkaBrokers(), {
    TRUST_PROXY: 'true',
    CORS_ORIGINS: 'https://app.example.com',
    // City, postal code and coordinates are stored only when enabled, from the city database;
    // these tests check them.
    GEO_FINE: 'true',
    GEO_DATABASE: 'city',
  });
  reader = await readTopic(c.kafka, c.topic);
});
afterAll(async () => {
  await reader?.stop();
  await c?.close();
});

const byId = (id: string) => (m: readonly Decoded[]) => m.some((x) => x.value.event_id === id);
async function landed(id: string): Promise<Decoded> {
  const all = await reader.waitFor(byId(id));
  return all.find((x) => x.value.event_id === id) as Decoded;
}

describe('POST /v1/events', () => {
  it('maps every native field to the Avro contract and corrects clock skew', async () => {
    const id = randomUUID();
    const now = Date.now();
    // The client clock runs 1 h behind: sent_at says now - 1 h, so timestamp is shifted by +1 h.
    const clientNow = new Date(now - 3_600_000);
    const r = await post(`${c.url}/v1/events`, {
      sent_at: clientNow.toISOString(),
      events: [
        {
          event_id: id,
          user_id: 'user-42',
          anonymous_id: 'anon-42',
          activity: 'login',
          feature: 'auth',
          timestamp: new Date(clientNow.getTime() - 60_000).toISOString(),
          session_id: 1_700_000_000_000,
          duration_seconds: 12,
          device: {
            id: 'dev-1',
            type: 'mobile',
            platform: 'ios',
            os_version: 'iOS 17.4',
            app_version: '3.2.1',
            browser_name: 'Safari',
            browser_version: '17',
          },
          geo: {
            country_code: 'de',
            region_code: 'BE',
            city: 'Berlin',
            postal_code: '10115',
            latitude: 52.5,
            longitude: 13.4,
            timezone: 'Europe/Berlin',
          },
          user: {
            registration_date: '2024-01-15',
            birth_date: '1990-05-17',
            gender: 'female',
            segment: 'power',
            account_status: 'active',
            is_test_account: false,
            attributes: { plan: 'pro' },
          },
          properties: { query: 'shoes', n: 3 },
          details: [{ type: 'search', payload: { results: 10 } }],
        },
      ],
    });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ accepted: 1, rejected: [], warnings: [] });
    const m = await landed(id);
    expect(m.key).toBe('user-42');
    expect(m.schema).toBe('user_activity.v1');
    const v = m.value;
    expect(v.source).toBe(SOURCE);
    expect(v.received_at as number).toBeGreaterThanOrEqual(now);
    expect(v.sent_at).toBe(clientNow.getTime());
    expect(v.original_timestamp).toBe(clientNow.getTime() - 60_000);
    expect(v.activity_timestamp).toBe(
      (v.original_timestamp as number) + ((v.received_at as number) - (v.sent_at as number)),
    );
    expect(v).toMatchObject({
      user_id: 'user-42',
      anonymous_id: 'anon-42',
      session_id: 1_700_000_000_000,
      duration_seconds: 12,
      activity_name: 'login',
      feature_name: 'auth',
      device_id: 'dev-1',
      device_type: 'mobile',
      platform: 'ios',
      os_version: 'iOS 17.4',
      app_version: '3.2.1',
      browser_name: 'Safari',
      browser_version: '17',
      country_code: 'DE',
      country_name: 'Germany',
      continent_code: 'EU',
      region_code: 'BE',
      city_name: 'Berlin',
      postal_code: '10115',
      latitude: 52.5,
      longitude: 13.4,
      timezone: 'Europe/Berlin',
      registration_date: Date.UTC(2024, 0, 15),
      birth_date: Date.UTC(1990, 4, 17) / 86_400_000,
      gender: 'female',
      segment_name: 'power',
      account_status: 'active',
      is_test_account: false,
      user_attributes: '{"plan":"pro"}',
      activity_metadata: '{"query":"shoes","n":3}',
      details: [{ detail_type: 'search', detail_payload: '{"results":10}' }],
      is_bot: false,
    });
  });

  it('enriches device from the User-Agent and geo from the IP, and anonymizes the IP', async () => {
    const id = randomUUID();
    const r = await post(
      `${c.url}/v1/events`,
      { event_id: id, anonymous_id: 'anon-7', activity: 'page_view' },
      { 'user-agent': CHROME_UA, 'x-forwarded-for': '8.8.8.8' },
    );
    expect(r.status).toBe(200);
    const { value: v, key } = await landed(id);
    expect(key).toBe('anon-7');
    expect(v).toMatchObject({
      feature_name: '',
      device_type: 'desktop',
      platform: 'web',
      os_version: 'Windows 10',
      browser_name: 'Chrome',
      browser_version: '124.0.0.0',
      country_code: 'US',
      country_name: 'United States',
      continent_code: 'NA',
      client_ip: '8.8.8.0',
      user_agent: CHROME_UA,
      is_bot: false,
      activity_metadata: '{}',
    });
    expect(v.city_name).toEqual(expect.any(String));
    expect(v.activity_timestamp).toBe(v.received_at);
  });

  it('flags bots', async () => {
    const id = randomUUID();
    expect(
      (
        await post(
          `${c.url}/v1/events`,
          { event_id: id, user_id: 'u', activity: 'a' },
          { 'user-agent': BOT_UA },
        )
      ).status,
    ).toBe(200);
    expect((await landed(id)).value.is_bot).toBe(true);
  });

  it('stores a string session id (native and Segment) as a stable integer, the string in the metadata', async () => {
    const session = 'b3c1e9a2-5f7d-4c1e-9a2b-7d5f4c1e9a2b';
    const native = randomUUID();
    const segment = randomUUID();
    expect(
      (
        await post(`${c.url}/v1/events`, {
          event_id: native,
          user_id: 'u1',
          activity: 'a',
          session_id: session,
        })
      ).status,
    ).toBe(200);
    expect(
      (
        await post(`${c.url}/v1/track`, {
          userId: 'u1',
          event: 'Viewed',
          messageId: segment,
          context: { sessionId: session },
        })
      ).status,
    ).toBe(200);
    const [a, b] = [await landed(native), await landed(eventIdFor(segment) as string)];
    expect(a.value.session_id).toBe(sessionNumber(session));
    expect(b.value.session_id).toBe(a.value.session_id);
    expect(JSON.parse(a.value.activity_metadata as string)).toEqual({ _session_id: session });
  });

  it('accepts an unknown field with a warning, keeps its value and counts it', async () => {
    const id = randomUUID();
    const r = await post(`${c.url}/v1/events`, {
      events: [{ event_id: id, user_id: 'u1', activity: 'a', activty: 'typo' }],
    });
    expect(r.status).toBe(200);
    expect(r.body.warnings).toEqual([
      { index: 0, event_id: id, warnings: ['activty: unknown field (kept in properties._unknown)'] },
    ]);
    expect(JSON.parse((await landed(id)).value.activity_metadata as string)).toEqual({
      _unknown: { activty: 'typo' },
    });
    const metrics = await (await fetch(`${c.url}/metrics`)).text();
    expect(metrics).toMatch(
      /collector_events_unknown_fields_total\{api="native",service="collector"\} [1-9]/,
    );
  });

  it('accepts the valid events of a batch and rejects the others with reasons', async () => {
    const good = randomUUID();
    const day = 86_400_000;
    const r = await post(`${c.url}/v1/events`, {
      events: [
        { event_id: randomUUID(), activity: 'a' },
        { event_id: good, user_id: 'u2', activity: 'a' },
        {
          event_id: randomUUID(),
          user_id: 'u2',
          activity: 'a',
          timestamp: new Date(Date.now() + 2 * day).toISOString(),
        },
        {
          event_id: randomUUID(),
          user_id: 'u2',
          activity: 'a',
          timestamp: new Date(Date.now() - 400 * day).toISOString(),
        },
        { user_id: 'u2', activity: 7, duration_seconds: 'long' },
      ],
    });
    expect(r.status).toBe(200);
    expect(r.body.accepted).toBe(1);
    expect(r.body.rejected?.map((x) => [x.index, x.errors])).toEqual([
      [0, ['user_id: required (user_id or anonymous_id)']],
      [2, ['timestamp: more than 24 h in the future']],
      [3, ['timestamp: older than 365 days']],
      [
        4,
        [
          'activity: expected a string, got number',
          'duration_seconds: must be an integer between 0 and 2147483647, got string',
        ],
      ],
    ]);
    await landed(good);
  });

  it('accepts gzip and deflate bodies', async () => {
    const id = randomUUID();
    const body = gzipSync(JSON.stringify({ event_id: id, user_id: 'u3', activity: 'a' }));
    expect((await post(`${c.url}/v1/events`, body, { 'content-encoding': 'gzip' })).status).toBe(200);
    await landed(id);
  });

  it('answers CORS preflights for allowed origins only', async () => {
    const pre = (origin: string) =>
      fetch(`${c.url}/v1/events`, {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'content-type',
        },
      });
    expect((await pre('https://app.example.com')).headers.get('access-control-allow-origin')).toBe(
      'https://app.example.com',
    );
    expect((await pre('https://evil.example.com')).headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('auth', () => {
  const event = () => ({ event_id: randomUUID(), user_id: 'u', activity: 'a' });

  it('accepts Bearer, Basic and a writeKey in a text/plain body (sendBeacon)', async () => {
    const a = event();
    const b = event();
    const t = event();
    expect((await post(`${c.url}/v1/events`, a)).status).toBe(200);
    const basic = `Basic ${Buffer.from(`${WRITE_KEY}:`).toString('base64')}`;
    expect((await post(`${c.url}/v1/events`, b, { authorization: basic })).status).toBe(200);
    const beacon = await post(`${c.url}/v1/events`, JSON.stringify({ ...t, writeKey: WRITE_KEY }), {
      authorization: '',
      'content-type': 'text/plain;charset=UTF-8',
    });
    expect(beacon.status).toBe(200);
    const m = await landed(t.event_id);
    // The key authenticates; it is never stored with the event.
    expect(m.value.activity_metadata).toBe('{}');
    await landed(a.event_id);
    await landed(b.event_id);
  });

  it('reads a JSON body whatever content type is declared, gzipped or not (RudderStack, bare clients)', async () => {
    const sent: string[] = [];
    for (const [type, gzip] of [
      ['application/x-www-form-urlencoded', true],
      ['application/x-www-form-urlencoded', false],
      ['application/octet-stream', false],
      [undefined, false],
      [undefined, true],
    ] as const) {
      const e = event();
      sent.push(e.event_id);
      const body = JSON.stringify({
        batch: [{ type: 'track', event: 'x', userId: 'u', messageId: e.event_id }],
      });
      const headers: Record<string, string> = { authorization: `Bearer ${WRITE_KEY}` };
      if (type) headers['content-type'] = type;
      if (gzip) headers['content-encoding'] = 'gzip';
      const res = await fetch(`${c.url}/v1/batch`, {
        method: 'POST',
        headers,
        body: gzip ? new Uint8Array(gzipSync(body)) : body,
      });
      expect(res.status, `${type} gzip=${gzip}: ${await res.text()}`).toBe(200);
    }
    for (const id of sent) await landed(eventIdFor(id) as string);
  });

  it('rejects a missing or unknown key with 401', async () => {
    const missing = await post(`${c.url}/v1/events`, event(), { authorization: '' });
    expect(missing.status).toBe(401);
    expect(missing.body.code).toBe('COLLECTOR_UNAUTHORIZED');
    const wrong = await post(`${c.url}/v1/events`, event(), { authorization: 'Bearer nope' });
    expect(wrong.status).toBe(401);
    expect(wrong.body.message).toBe('unknown write key');
  });
});

describe('POST /v1/identify', () => {
  it('publishes a UserIdentify record with traits mapped and the rest kept as attributes', async () => {
    const id = randomUUID();
    const r = await post(`${c.url}/v1/identify`, {
      event_id: id,
      user_id: 'user-9',
      anonymous_id: 'anon-9',
      traits: {
        registration_date: '2025-02-03T04:05:06Z',
        segment: 'trial',
        is_test_account: true,
        plan: 'free',
      },
    });
    expect(r.status).toBe(200);
    const m = await landed(id);
    expect(m.schema).toBe('user_identify.v1');
    expect(m.key).toBe('user-9');
    expect(m.value).toMatchObject({
      kind: 'identify',
      user_id: 'user-9',
      anonymous_id: 'anon-9',
      registration_date: Date.UTC(2025, 1, 3, 4, 5, 6),
      segment_name: 'trial',
      is_test_account: true,
      user_attributes: '{"plan":"free"}',
      source: SOURCE,
    });
  });

  it('rejects an identify without user_id with 400 and the reason', async () => {
    const r = await post(`${c.url}/v1/identify`, { anonymous_id: 'a', traits: {} });
    expect(r.status).toBe(400);
    expect(r.body.rejected?.[0]?.errors).toEqual(['user_id: required']);
  });
});

describe('operations', () => {
  it('serves liveness, readiness, metrics and the OpenAPI document', async () => {
    expect(await (await fetch(`${c.url}/healthz`)).json()).toEqual({ status: 'ok' });
    expect(await (await fetch(`${c.url}/readyz`)).json()).toEqual({ status: 'ready' });
    const metrics = await (await fetch(`${c.url}/metrics`)).text();
    for (const name of [
      'collector_http_requests_total',
      'collector_http_request_duration_seconds',
      'collector_events_accepted_total',
      'collector_kafka_produce_duration_seconds',
      'collector_kafka_batch_messages',
      'collector_clock_skew_seconds',
      'collector_events_bot_total',
    ]) {
      expect(metrics).toContain(name);
    }
    const doc = (await (await fetch(`${c.url}/docs/json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/v1/events', '/v1/identify', '/v1/batch', '/v1/track', '/healthz', '/readyz']),
    );
    expect((await fetch(`${c.url}/docs`)).status).toBeLessThan(400);
  });

  it('coalesces concurrent requests into fewer produce calls', async () => {
    const before = await c.metrics.kafkaBatchMessages.get();
    const sendsBefore = before.values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0;
    const ids = Array.from({ length: 40 }, () => randomUUID());
    const results = await Promise.all(
      ids.map((id) => post(`${c.url}/v1/events`, { event_id: id, user_id: id, activity: 'a' })),
    );
    expect(results.every((r) => r.status === 200)).toBe(true);
    const after = await c.metrics.kafkaBatchMessages.get();
    const sends = (after.values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0) - sendsBefore;
    expect(sends).toBeLessThan(ids.length);
    await reader.waitFor((m) => ids.every((id) => m.some((x) => x.value.event_id === id)));
  });
});

describe('rate limiting', () => {
  it('answers 429 with Retry-After once a key exceeds its budget', async () => {
    const limited = await startCollector(
      kafkaBrokers(),
      { RATE_LIMIT_MAX: '2', RATE_LIMIT_WINDOW_MS: '60000' },
      { geo: false },
    );
    try {
      const statuses: number[] = [];
      let last: Awaited<ReturnType<typeof post>> | undefined;
      for (let i = 0; i < 3; i++) {
        last = await post(`${limited.url}/v1/events`, { user_id: 'u', activity: 'a' });
        statuses.push(last.status);
      }
      expect(statuses).toEqual([200, 200, 429]);
      expect(last?.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(last?.body.code).toBe('COLLECTOR_RATE_LIMITED');
      // Another key has its own budget.
      expect(
        (
          await post(
            `${limited.url}/v1/events`,
            { user_id: 'u', activity: 'a' },
            { authorization: 'Bearer other-key' },
          )
        ).status,
      ).toBe(200);
    } finally {
      await limited.close();
    }
  });
});

describe('abuse limits', () => {
  it('limits each client address before its body is read, whatever key it uses', async () => {
    const limited = await startCollector(
      kafkaBrokers(),
      { RATE_LIMIT_PER_ADDRESS_MAX: '2', RATE_LIMIT_WINDOW_MS: '60000', TRUST_PROXY: 'true' },
      { geo: false },
    );
    try {
      const from = (
        address: string,
        authorization: string,
        body: unknown = { user_id: 'u', activity: 'a' },
      ) => post(`${limited.url}/v1/events`, body, { authorization, 'x-forwarded-for': address });
      expect((await from('203.0.113.1', `Bearer ${WRITE_KEY}`)).status).toBe(200);
      expect((await from('203.0.113.1', 'Bearer other-key')).status).toBe(200);
      // Third from that address: refused with either key, and before its body is parsed (a
      // malformed body still gets 429, not 400).
      const third = await from('203.0.113.1', 'Bearer other-key', '{not json');
      expect(third.status).toBe(429);
      expect(third.body.code).toBe('COLLECTOR_RATE_LIMITED');
      expect(third.headers.get('retry-after')).toMatch(/^\d+$/);
      // The key's budget is not spent by that address: another client still gets in with it.
      expect((await from('203.0.113.2', `Bearer ${WRITE_KEY}`)).status).toBe(200);
    } finally {
      await limited.close();
    }
  });

  it('refuses an unknown key from a header before reading the body', async () => {
    const res = await post(`${c.url}/v1/events`, '{not json', { authorization: 'Bearer nope' });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('COLLECTOR_UNAUTHORIZED');
    // A key in the body (sendBeacon) still works: the body is read for it.
    const beacon = await post(
      `${c.url}/v1/events`,
      { writeKey: WRITE_KEY, user_id: 'u', activity: 'beacon' },
      { authorization: '' },
    );
    expect(beacon.status).toBe(200);
  });

  it('cuts off a client that sends its body a byte at a time (slowloris)', async () => {
    const strict = await startCollector(kafkaBrokers(), { REQUEST_TIMEOUT_MS: '1000' }, { geo: false });
    try {
      const body = JSON.stringify({ user_id: 'slow', activity: 'a', properties: { pad: 'x'.repeat(200) } });
      const slow = await slowRequest(strict.url, {
        method: 'POST',
        path: '/v1/events',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${WRITE_KEY}` },
        body,
        slow: 'body',
        everyMs: 50,
      });
      // ~12 s to send it all; the server gives up long before, answering 408 or closing.
      expect(slow.cutOff).toBe(true);
      if (slow.status !== undefined) expect(slow.status).toBe(408);
      // Well-behaved clients are unaffected.
      expect((await post(`${strict.url}/v1/events`, { user_id: 'u', activity: 'a' })).status).toBe(200);
    } finally {
      await strict.close();
    }
  }, 60_000);
});

describe('write-key scopes', () => {
  it('a track-only (browser) key sends events but no identify, alias or test-account flag', async () => {
    const scoped = await startCollector(
      kafkaBrokers(),
      { WRITE_KEYS: `${WRITE_KEY}:${SOURCE},browser-key:web:track` },
      { geo: false },
    );
    const scopedReader = await readTopic(scoped.kafka, scoped.topic);
    try {
      const browser = { authorization: 'Bearer browser-key' };
      const id = randomUUID();
      const ok = await post(
        `${scoped.url}/v1/events`,
        { event_id: id, user_id: 'u-scope', activity: 'a', user: { is_test_account: true } },
        browser,
      );
      expect(ok.status).toBe(200);
      expect(JSON.stringify(ok.body)).toContain('is_test_account: ignored');
      const refused = await post(`${scoped.url}/v1/identify`, { user_id: 'u-scope', traits: {} }, browser);
      expect(refused.status).toBe(400);
      expect(JSON.stringify(refused.body)).toContain('identify: not allowed with a track-only write key');
      const alias = await post(
        `${scoped.url}/v1/batch`,
        { batch: [{ type: 'alias', userId: 'u-scope', previousId: 'anon-1', messageId: randomUUID() }] },
        browser,
      );
      expect(JSON.stringify(alias.body)).toContain('alias: not allowed with a track-only write key');
      // The server key may.
      expect(
        (await post(`${scoped.url}/v1/identify`, { user_id: 'u-scope', traits: { plan: 'pro' } })).status,
      ).toBe(200);
      const [m] = (await scopedReader.waitFor((all) => all.some((x) => x.value.event_id === id))).filter(
        (x) => x.value.event_id === id,
      );
      expect(m?.value.is_test_account).toBe(false);
      expect(m?.value.source).toBe('web');
    } finally {
      await scopedReader.stop();
      await scoped.close();
    }
  });
});

describe('geo privacy', () => {
  it('stores the country but no city, postal code or coordinates by default', async () => {
    const plain = await startCollector(kafkaBrokers(), { TRUST_PROXY: 'true' });
    const plainReader = await readTopic(plain.kafka, plain.topic);
    try {
      const id = randomUUID();
      const sent = await post(
        `${plain.url}/v1/events`,
        { event_id: id, user_id: 'u-geo', activity: 'a', geo: { city: 'Lyon', latitude: 45.7 } },
        { 'x-forwarded-for': '8.8.8.8' },
      );
      expect(sent.status).toBe(200);
      const other = randomUUID();
      await post(
        `${plain.url}/v1/events`,
        { event_id: other, user_id: 'u-geo', activity: 'a' },
        { 'x-forwarded-for': '8.8.8.8' },
      );
      const all = await plainReader.waitFor((m) =>
        [id, other].every((e) => m.some((x) => x.value.event_id === e)),
      );
      for (const e of [id, other]) {
        const v = all.find((x) => x.value.event_id === e)?.value;
        expect([v?.city_name, v?.postal_code, v?.latitude, v?.longitude], e).toEqual([
          null,
          null,
          null,
          null,
        ]);
      }
      expect(all.find((x) => x.value.event_id === other)?.value.country_code).toBe('US');
    } finally {
      await plainReader.stop();
      await plain.close();
    }
  });
});
