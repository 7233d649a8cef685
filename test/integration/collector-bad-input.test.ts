/**
 * What the internet sends: each bad input gets its documented status and error text, the good
 * events beside it are accepted (and on the topic), and the process stays up.
 */
import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kafkaBrokers } from '../harness/services.ts';
import {
  post,
  readTopic,
  startCollector,
  type TestCollector,
  type TopicReader,
  WRITE_KEY,
} from './collector-harness.ts';

let c: TestCollector;
let reader: TopicReader;

beforeAll(async () => {
  c = await startCollector(kafkaBrokers(), {}, { geo: false });
  reader = await readTopic(c.kafka, c.topic);
});
afterAll(async () => {
  await reader?.stop();
  await c?.close();
});

const good = () => ({ event_id: randomUUID(), user_id: 'u', activity: 'a' });
const onTopic = (ids: readonly string[]) =>
  reader.waitFor((m) => ids.every((id) => m.some((x) => x.value.event_id === id)));

function nested(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
}

describe('whole-request problems', () => {
  const cases: Array<[string, () => Promise<Awaited<ReturnType<typeof post>>>, number, string, RegExp]> = [
    [
      'malformed JSON',
      () => post(`${c.url}/v1/events`, '{"events": ['),
      400,
      'COLLECTOR_BODY_MALFORMED',
      /^body is not valid JSON/,
    ],
    [
      'empty body',
      () => post(`${c.url}/v1/events`, ''),
      400,
      'COLLECTOR_BODY_MALFORMED',
      /^body is not valid JSON/,
    ],
    [
      'invalid UTF-8',
      () =>
        post(
          `${c.url}/v1/events`,
          Buffer.concat([
            Buffer.from('{"user_id":"'),
            Buffer.from([0xff, 0xfe]),
            Buffer.from('","activity":"a"}'),
          ]),
        ),
      400,
      'COLLECTOR_BODY_INVALID_UTF8',
      /^body is not valid UTF-8$/,
    ],
    [
      'a JSON array body',
      () => post(`${c.url}/v1/events`, [good()]),
      400,
      'COLLECTOR_BODY_INVALID',
      /^body: expected a JSON object$/,
    ],
    [
      'events not an array',
      () => post(`${c.url}/v1/events`, { events: {} }),
      400,
      'COLLECTOR_BODY_INVALID',
      /^events: expected an array$/,
    ],
    [
      'empty batch',
      () => post(`${c.url}/v1/events`, { events: [] }),
      400,
      'COLLECTOR_EMPTY_BATCH',
      /^events: empty batch$/,
    ],
    [
      'bad sent_at',
      () => post(`${c.url}/v1/events`, { events: [good()], sent_at: 'yesterday' }),
      400,
      'COLLECTOR_SENT_AT_INVALID',
      /^sent_at: not an ISO-8601/,
    ],
    [
      'a form body (the content type is not what decides: the body is not JSON)',
      () => post(`${c.url}/v1/events`, 'user_id=u', { 'content-type': 'application/x-www-form-urlencoded' }),
      400,
      'COLLECTOR_BODY_MALFORMED',
      /^body is not valid JSON/,
    ],
    [
      'unsupported content encoding',
      () => post(`${c.url}/v1/events`, JSON.stringify(good()), { 'content-encoding': 'br' }),
      415,
      'COLLECTOR_UNSUPPORTED_ENCODING',
      /^Content-Encoding br is not supported/,
    ],
    [
      'corrupt gzip',
      () => post(`${c.url}/v1/events`, Buffer.from('not gzip at all'), { 'content-encoding': 'gzip' }),
      400,
      'COLLECTOR_BODY_MALFORMED',
      /incorrect header check/,
    ],
    [
      'bad key',
      () => post(`${c.url}/v1/events`, good(), { authorization: 'Bearer wrong' }),
      401,
      'COLLECTOR_UNAUTHORIZED',
      /^unknown write key$/,
    ],
    [
      'oversize body',
      () =>
        post(`${c.url}/v1/events`, { events: [{ ...good(), properties: { pad: 'x'.repeat(600 * 1024) } }] }),
      413,
      'COLLECTOR_BODY_TOO_LARGE',
      /./,
    ],
    [
      'gzip bomb (100 MB of zeros in ~100 KB)',
      () =>
        post(`${c.url}/v1/events`, gzipSync(Buffer.alloc(100 * 1024 * 1024, 0x20)), {
          'content-encoding': 'gzip',
        }),
      413,
      'COLLECTOR_BODY_TOO_LARGE',
      /./,
    ],
    [
      'too many events',
      () =>
        post(`${c.url}/v1/events`, {
          events: Array.from({ length: 10_000 }, () => ({ user_id: 'u', activity: 'a' })),
        }),
      413,
      'COLLECTOR_TOO_MANY_EVENTS',
      /^events: 10000 events; the limit is 2500 per request$/,
    ],
  ];
  it.each(cases)('%s', async (_name, send, status, code, message) => {
    const r = await send();
    expect(r.status).toBe(status);
    expect(r.body.code).toBe(code);
    expect(r.body.message).toMatch(message);
  });
});

describe('per-event problems beside good events', () => {
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['missing ids', { activity: 'a' }, 'user_id: required (user_id or anonymous_id)'],
    ['missing activity', { user_id: 'u' }, 'activity: required'],
    ['wrong type', { user_id: 42, activity: 'a' }, 'user_id: expected a string, got number'],
    ['bad event_id', { event_id: 'abc', user_id: 'u', activity: 'a' }, 'event_id: not a UUID'],
    [
      'bad timestamp',
      { user_id: 'u', activity: 'a', timestamp: '2026-13-01T00:00:00Z' },
      'timestamp: not an ISO-8601 date-time with a time zone',
    ],
    [
      'zone-less timestamp',
      { user_id: 'u', activity: 'a', timestamp: '2026-11-01T00:00:00' },
      'timestamp: not an ISO-8601 date-time with a time zone',
    ],
    [
      'oversize event',
      { user_id: 'u', activity: 'a', properties: { pad: 'x'.repeat(40_000) } },
      'event: 40054 bytes exceeds the 32768-byte limit',
    ],
    [
      'deep nesting',
      { user_id: 'u', activity: 'a', properties: nested(20) },
      'properties.a.a.a.a.a.a.a.a.a: nested deeper than 10 levels',
    ],
    [
      'too many keys',
      {
        user_id: 'u',
        activity: 'a',
        properties: Object.fromEntries(Array.from({ length: 1_200 }, (_, i) => [`k${i}`, i])),
      },
      'event: more than 1000 keys and array items',
    ],
    [
      'a string instead of an event',
      'just a string' as unknown as Record<string, unknown>,
      'event: expected an object, got string',
    ],
  ];
  it.each(cases)('%s', async (_name, bad, error) => {
    const ok = good();
    const r = await post(`${c.url}/v1/events`, { events: [bad, ok] });
    expect(r.status).toBe(200);
    expect(r.body.accepted).toBe(1);
    const echoed = typeof bad === 'object' && typeof bad.event_id === 'string' ? bad.event_id : null;
    expect(r.body.rejected).toEqual([{ index: 0, event_id: echoed, errors: [error] }]);
    await onTopic([ok.event_id]);
  });

  it('rejects __proto__ (prototype pollution) per event and pollutes nothing', async () => {
    const ok = good();
    const raw = `{"events":[{"user_id":"u","activity":"a","properties":{"__proto__":{"polluted":true}}},${JSON.stringify(ok)}]}`;
    const r = await post(`${c.url}/v1/events`, raw);
    expect(r.status).toBe(200);
    expect(r.body.rejected).toEqual([
      { index: 0, event_id: null, errors: ['properties.__proto__: forbidden key'] },
    ]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    await onTopic([ok.event_id]);
  });

  it('answers 413 when the only event is too large, 400 when none is valid', async () => {
    const big = await post(`${c.url}/v1/events`, {
      user_id: 'u',
      activity: 'a',
      properties: { pad: 'x'.repeat(40_000) },
    });
    expect(big.status).toBe(413);
    expect(big.body.code).toBe('COLLECTOR_EVENT_TOO_LARGE');
    expect(big.body.rejected?.[0]?.errors[0]).toMatch(/exceeds the 32768-byte limit/);
    const none = await post(`${c.url}/v1/events`, { events: [{ activity: 'a' }, { user_id: 'u' }] });
    expect(none.status).toBe(400);
    expect(none.body.code).toBe('COLLECTOR_NO_VALID_EVENTS');
    expect(none.body.accepted).toBe(0);
    expect(none.body.rejected?.map((x) => x.errors[0])).toEqual([
      'user_id: required (user_id or anonymous_id)',
      'activity: required',
    ]);
  });

  it('survives a 50k-deep nesting without a stack overflow', async () => {
    const ok = good();
    const deep = `${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}`;
    const r = await post(
      `${c.url}/v1/events`,
      `{"events":[{"user_id":"u","activity":"a","properties":${deep}},${JSON.stringify(ok)}]}`,
    );
    expect(r.status).toBe(200);
    expect(r.body.rejected?.[0]?.errors[0]).toMatch(/nested deeper than 10 levels$/);
  });
});

describe('limits can be raised', () => {
  it('accepts a 10k-event batch when configured to, and every event lands on the topic', async () => {
    const big = await startCollector(
      kafkaBrokers(),
      { MAX_BATCH_EVENTS: '10000', MAX_BATCH_BYTES: String(4 * 1024 * 1024) },
      { geo: false },
    );
    const bigReader = await readTopic(big.kafka, big.topic);
    try {
      const events = Array.from({ length: 10_000 }, (_, i) => ({
        event_id: randomUUID(),
        user_id: `u${i % 97}`,
        activity: 'a',
      }));
      const r = await post(`${big.url}/v1/events`, { events });
      expect(r.status).toBe(200);
      expect(r.body.accepted).toBe(10_000);
      const all = await bigReader.waitFor((m) => m.length >= 10_000);
      expect(new Set(all.map((m) => m.value.event_id))).toEqual(new Set(events.map((e) => e.event_id)));
    } finally {
      await bigReader.stop();
      await big.close();
    }
  });
});

it('answers every kind of bad request without a stack trace or a file path', async () => {
  const raw = (init: RequestInit & { path?: string }) =>
    fetch(`${c.url}${init.path ?? '/v1/events'}`, { method: 'POST', ...init });
  const auth = { authorization: `Bearer ${WRITE_KEY}` };
  const answers = await Promise.all([
    raw({ headers: { ...auth, 'content-type': 'application/json' }, body: '{"events": [' }),
    raw({
      headers: { ...auth, 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: 'not gzip',
    }),
    raw({ headers: { ...auth, 'content-type': 'application/xml' }, body: '<x/>' }),
    raw({ headers: { ...auth, 'content-type': 'application/json' }, body: Buffer.from([0xff, 0xfe, 0x7b]) }),
    raw({ headers: { 'content-type': 'application/json' }, body: '{}' }),
    raw({ headers: { ...auth, 'content-type': 'application/json' }, body: '"just a string"' }),
    raw({ headers: { ...auth, 'content-type': 'application/json' }, body: 'x'.repeat(600_000) }),
    raw({ path: '/v1/nowhere', headers: auth }),
    raw({
      path: '/v1/batch',
      headers: { ...auth, 'content-type': 'application/json' },
      body: '{"batch": 5}',
    }),
  ]);
  for (const res of answers) {
    const text = await res.text();
    expect(res.status, text).toBeGreaterThanOrEqual(400);
    expect(res.status, text).toBeLessThan(500);
    expect(text, text).not.toMatch(/\n\s+at |node_modules|\/work\/|file:\/\//);
  }
});

it('is still up after all of the above', async () => {
  expect((await fetch(`${c.url}/healthz`)).status).toBe(200);
  const ok = good();
  expect((await post(`${c.url}/v1/events`, ok)).status).toBe(200);
  await onTopic([ok.event_id]);
});
