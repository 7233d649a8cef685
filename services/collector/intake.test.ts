/**
 * The intake's promises that hold per event, with the Kafka boundary faked (a sink that records
 * what it was asked to publish): a request-level problem (an unusable sent_at, an over-long user
 * agent) is a warning on each event, never a lost one; an event without an id gets the same id
 * when a retry repeats it; a record Avro refuses costs that event, never the request.
 */

import type { FastifyRequest } from 'fastify';
import { describe, expect, it } from 'vitest';
import { CONTRACT } from '../../schemas/records.ts';
import { AvroCodec } from '../lib/avro.ts';
import { PipelineError } from '../lib/errors.ts';
import type { OutgoingMessage } from '../lib/kafka-producer.ts';
import { limitsOf, readCollectorConfig } from './config.ts';
import { Enricher } from './enrichment/records.ts';
import { type IntakeDeps, type IntakeItem, intake } from './intake.ts';
import { createCollectorMetrics } from './metrics.ts';
import { contextOf, sentAtOf } from './routes/common.ts';

const now = Date.UTC(2026, 10, 29, 12);
// The collector's defaults, as it runs unconfigured.
const LIMITS = limitsOf(readCollectorConfig({ WRITE_KEYS: 'test-key:test' }));

function deps(codec: AvroCodec = new AvroCodec()): IntakeDeps & { published: OutgoingMessage[] } {
  const published: OutgoingMessage[] = [];
  return {
    published,
    codec,
    enricher: new Enricher({ anonymizeIp: true, geo: undefined, geoAddress: 'full', fineGeo: true }),
    metrics: createCollectorMetrics(),
    limits: LIMITS,
    sink: {
      publish: async (m) => {
        published.push(...m);
      },
      healthy: () => true,
      backlogMs: () => 0,
      check: async () => true,
    },
  };
}

const request = (userAgent?: string, scope: 'all' | 'track' = 'all') =>
  ({
    source: 'test',
    scope,
    receivedAt: now,
    ip: '192.0.2.1',
    headers: { 'user-agent': userAgent },
  }) as unknown as FastifyRequest;

const activity = (
  input: unknown,
  sentAt = sentAtOf(undefined, 'sent_at'),
  ua?: string,
  sourceBytes?: number,
): IntakeItem => ({
  kind: 'activity',
  input,
  ctx: contextOf(request(ua), sentAt),
  ...(sourceBytes === undefined ? {} : { sourceBytes }),
});

const decodeAll = (codec: AvroCodec, messages: readonly OutgoingMessage[]) =>
  messages.map((m) => codec.decode(m.headers.schema ?? '', m.value).value);

describe('intake', () => {
  it('ignores a sent_at the columns cannot hold, with a warning on every event it kept', async () => {
    const d = deps();
    const sentAt = sentAtOf('0001-01-01T00:00:00Z', 'sent_at');
    const r = await intake(
      [
        activity({ user_id: 'u1', activity: 'login' }, sentAt),
        activity({ user_id: 'u2', activity: 'login' }, sentAt),
      ],
      'native',
      d,
    );
    expect(r.accepted).toBe(2);
    expect(r.warnings.map((w) => w.warnings[0])).toEqual([
      expect.stringMatching(/^sent_at: not between 1970-01-01T00:00:00.000Z and .*; ignored$/),
      expect.stringMatching(/^sent_at: /),
    ]);
    const records = decodeAll(d.codec, d.published);
    expect(records.map((x) => x.sent_at)).toEqual([null, null]);
    expect(records.map((x) => x.feature_name)).toEqual(['', '']);
  });

  it('a track-only key sends activities only, cannot mark test accounts, and its relayed IP is not used', async () => {
    const d = deps();
    const track = contextOf(request(undefined, 'track'), sentAtOf(undefined, 'sent_at'), {
      ip: '203.0.113.9',
    });
    const server = contextOf(request(undefined, 'all'), sentAtOf(undefined, 'sent_at'), {
      ip: '203.0.113.9',
    });
    const r = await intake(
      [
        {
          kind: 'activity',
          input: { user_id: 'u1', activity: 'a', user: { is_test_account: true } },
          ctx: track,
        },
        { kind: 'identify', input: { user_id: 'u1', traits: { segment: 'pro' } }, ctx: track },
        { kind: 'identify', input: { user_id: 'u1' }, ctx: track, alias: { previousId: 'a1' } },
        {
          kind: 'activity',
          input: { user_id: 'u2', activity: 'a', user: { is_test_account: true } },
          ctx: server,
        },
      ],
      'native',
      d,
    );
    expect(r.accepted).toBe(2);
    expect(r.rejected).toEqual([
      {
        index: 1,
        event_id: null,
        errors: ['identify: not allowed with a track-only write key (send it with a server key)'],
      },
      {
        index: 2,
        event_id: null,
        errors: ['alias: not allowed with a track-only write key (send it with a server key)'],
      },
    ]);
    expect(r.warnings[0]?.warnings[0]).toMatch(/^is_test_account: ignored/);
    const records = decodeAll(d.codec, d.published);
    expect(records.map((x) => [x.user_id, x.is_test_account, x.client_ip])).toEqual([
      // The request's address (anonymized), not the relayed one, for the browser key.
      ['u1', false, '192.0.2.0'],
      ['u2', true, '203.0.113.0'],
    ]);
  });

  it('refuses an unreadable sent_at for the request, naming the field', () => {
    expect(() => sentAtOf('yesterday', 'sent_at')).toThrow(/^sent_at: not an ISO-8601/);
  });

  it('cuts an over-long user agent before it is copied into each event, and says so', async () => {
    const d = deps();
    const ua = 'Mozilla/5.0 '.repeat(400);
    const r = await intake([activity({ user_id: 'u', activity: 'a' }, undefined, ua)], 'native', d);
    expect(r.warnings[0]?.warnings).toContain(
      `userAgent: longer than ${CONTRACT.maxUserAgentLength} characters; truncated`,
    );
    const [record] = decodeAll(d.codec, d.published);
    expect(String(record?.user_agent).length).toBe(CONTRACT.maxUserAgentLength);
  });

  it('gives an event without an id the same id when a retry repeats it', async () => {
    const d = deps();
    const sentAt = sentAtOf(new Date(now).toISOString(), 'sent_at');
    const timed = { user_id: 'u', activity: 'a', timestamp: new Date(now - 1_000).toISOString() };
    const untimed = { user_id: 'u', activity: 'a' };
    await intake([activity(timed), activity(timed), activity(untimed, sentAt)], 'native', d);
    await intake(
      [activity(timed), activity(untimed, sentAt), activity(untimed), activity(untimed)],
      'native',
      d,
    );
    const ids = decodeAll(d.codec, d.published).map((x) => x.event_id as string);
    // timed: the same event each time; untimed with a sent_at: the same request retried;
    // untimed without one: nothing tells a retry from a new event, so each is new.
    expect(new Set([ids[0], ids[1], ids[3]]).size).toBe(1);
    expect(ids[2]).toBe(ids[4]);
    expect(ids[2]).not.toBe(ids[0]);
    expect(ids[5]).not.toBe(ids[6]);
    expect(new Set(ids).size).toBe(4);
  });

  it('rejects only the event Avro refuses, and publishes the others', async () => {
    const codec = new AvroCodec();
    const encode = codec.encode.bind(codec);
    codec.encode = (family, record) => {
      if ((record as { user_id?: string }).user_id === 'bad')
        throw new PipelineError('AVRO_INVALID_RECORD', 'session_id: not a long');
      return encode(family, record);
    };
    const d = deps(codec);
    const r = await intake(
      [activity({ user_id: 'ok', activity: 'a' }), activity({ user_id: 'bad', activity: 'a' })],
      'native',
      d,
    );
    expect(r.accepted).toBe(1);
    expect(r.rejected).toEqual([{ index: 1, event_id: null, errors: ['event: session_id: not a long'] }]);
    expect(d.published).toHaveLength(1);
  });

  it('measures the events of a body that could hold one over the limit, and rejects only that one', async () => {
    const events = [
      { user_id: 'u1', activity: 'a' },
      { user_id: 'u2', activity: 'a', properties: { pad: 'x'.repeat(LIMITS.maxEventBytes) } },
    ];
    const sourceBytes = Buffer.byteLength(JSON.stringify({ events }));
    const d = deps();
    const items = events.map((input) => activity(input, undefined, undefined, sourceBytes));
    const r = await intake(items, 'native', d);
    expect(r.accepted).toBe(1);
    expect(r.rejected).toEqual([
      {
        index: 1,
        event_id: null,
        errors: [
          `event: ${Buffer.byteLength(JSON.stringify(events[1]))} bytes exceeds the ${LIMITS.maxEventBytes}-byte limit`,
        ],
      },
    ]);
    // A small body's events are not measured, and come out the same.
    const small = deps();
    const one = activity(events[0], undefined, undefined, Buffer.byteLength(JSON.stringify(events[0])));
    expect(await intake([one], 'native', small)).toEqual(
      await intake([activity(events[0])], 'native', deps()),
    );
    expect(small.published).toHaveLength(1);
  });

  it('all or nothing: one rejected event leaves the valid ones unpublished and uncounted', async () => {
    const d = deps();
    const r = await intake(
      [activity({ user_id: 'ok', activity: 'a', unknown_field: 1 }), activity({ user_id: 'bad' })],
      'native',
      d,
      { allOrNothing: true },
    );
    expect(r).toEqual({
      accepted: 0,
      rejected: [{ index: 1, event_id: null, errors: ['activity: required'] }],
      warnings: [],
      tooLarge: false,
    });
    expect(d.published).toHaveLength(0);
    const counted = async (name: string) =>
      (await d.metrics.registry.getSingleMetric(name)?.get())?.values.reduce((n, v) => n + v.value, 0);
    expect(await counted('collector_events_accepted_total')).toBe(0);
    expect(await counted('collector_events_unknown_fields_total')).toBe(0);
  });
});
