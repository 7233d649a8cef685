/**
 * The consumer process against the real Kafka and ClickHouse: poison messages between good ones
 * go to the DLQ with their reason while every good one lands; anonymous events get the identified
 * user and the profile attributes, from the cache and, after a restart, from ClickHouse; a
 * graceful shutdown exits 0 with nothing left uncommitted.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCHEMA_HEADER } from '../../services/lib/avro.ts';
import { DAY_MS } from '../../services/lib/time.ts';
import { groupLag, produce } from '../fixtures/kafka.ts';
import { activity, encoded, identify, type RawMessage } from '../fixtures/records.ts';
import {
  type ConsumerSetup,
  consumerSetup,
  distinctEvents,
  scalar,
  waitFor,
} from '../harness/consumer-process.ts';
import { uniqueName } from '../harness/services.ts';

const ROOT = new URL('../../', import.meta.url).pathname;

describe('consumer', () => {
  let setup: ConsumerSetup;

  beforeAll(async () => {
    setup = await consumerSetup('consumer', 3);
  });

  afterAll(async () => {
    await setup?.close();
  });

  it('dead-letters poison messages with their reason and writes every good one', async () => {
    const consumer = await setup.start();
    const good: RawMessage[] = [];
    for (let i = 0; i < 300; i++) good.push(encoded('user_activity', activity({ user_id: `u${i % 30}` })));
    const valid = encoded('user_activity', activity({ user_id: 'u1' }));
    const poison: RawMessage[] = [
      { key: 'u1', value: Buffer.from([0xff, 0xfe, 0x01]), headers: { [SCHEMA_HEADER]: 'user_activity.v1' } },
      { key: 'u1', value: valid.value, headers: {} },
      { key: 'u1', value: valid.value, headers: { [SCHEMA_HEADER]: 'user_activity.v9' } },
      encoded('user_activity', activity({ user_id: 'u1', event_id: 'not-a-uuid' })),
      encoded('user_activity', activity({ user_id: 'u1', activity_timestamp: 5 })),
    ];
    // Poison interleaved with good messages of the same key, hence of the same partition.
    const stream = [
      ...good.slice(0, 100),
      ...poison.slice(0, 3),
      ...good.slice(100, 200),
      ...poison.slice(3),
    ];
    stream.push(...good.slice(200));
    await produce(setup.topics.kafka, setup.topic, stream);

    expect(
      await waitFor(
        '300 events',
        () => distinctEvents(setup.db.client),
        (n) => n >= 300,
      ),
    ).toBe(300);
    await waitFor(
      'lag 0',
      () => groupLag(setup.admin, setup.groupId, setup.topic),
      (n) => n === 0,
    );

    const dlq = (await readTopic(setup.dlqTopic, (got) => got.length >= 5)).map((m) => m.headers);
    const reasons = dlq.map((h) => h['dlq-reason']).sort();
    expect(reasons).toEqual([
      'invalid_content',
      'invalid_content',
      'missing_schema_header',
      'undecodable',
      'unknown_schema',
    ]);
    // Each entry names where its original sits: the source message at that partition and offset
    // is one of the poison messages (same bytes), and no two entries name the same one.
    const source = new Map(
      (await readTopic(setup.topic, (got) => got.length >= stream.length)).map((m) => [
        `${m.partition}:${m.offset}`,
        m.value,
      ]),
    );
    const poisonValues = poison.map((m) => (m.value as Buffer).toString('hex'));
    const named = new Set<string>();
    for (const h of dlq) {
      expect(h['dlq-source-topic']).toBe(setup.topic);
      const at = `${h['dlq-source-partition']}:${h['dlq-source-offset']}`;
      named.add(at);
      expect(poisonValues, at).toContain(source.get(at)?.toString('hex'));
      expect(Date.parse(h['dlq-dead-lettered-at'] ?? '')).toBeGreaterThan(0);
      expect(h['dlq-error-code']).toMatch(/^[A-Z_0-9]+$/);
    }
    expect(named.size).toBe(poison.length);
    expect(await consumer.metric('consumer_dlq_messages_total')).toBe(5);
    expect(await consumer.metric('consumer_rows_written_total')).toBe(300);

    consumer.child.kill('SIGTERM');
    expect(await consumer.exited).toBe(0);
  });

  it('resolves anonymous events to the identified user and fills the profile, also after a restart', async () => {
    const birth = Math.floor(Date.UTC(1990, 4, 1) / DAY_MS);
    const profile = {
      segment_name: 'pro',
      segment_description: 'paying teams',
      segment_category: 'paid',
      country_code: 'FR',
      gender: 'female',
      birth_date: birth,
      is_test_account: true,
      registration_date: Date.UTC(2024, 0, 2),
    };
    let consumer = await setup.start();
    await produce(setup.topics.kafka, setup.topic, [
      encoded('user_identify', identify({ user_id: 'known', anonymous_id: 'anon-1', ...profile })),
    ]);
    await waitFor(
      'identity link',
      () => scalar(setup.db.client, "SELECT count() FROM identity_map WHERE anonymous_id = 'anon-1'"),
      (n) => n === 1,
    );
    const first = activity({ anonymous_id: 'anon-1' });
    await produce(setup.topics.kafka, setup.topic, [encoded('user_activity', first)]);
    await waitFor(
      'first anonymous event',
      () => rowOf(first.event_id as string),
      (r) => r !== undefined,
    );

    // A new process starts with an empty cache: the link and the profile come from ClickHouse.
    consumer.child.kill('SIGTERM');
    expect(await consumer.exited).toBe(0);
    consumer = await setup.start();
    const second = activity({ anonymous_id: 'anon-1' });
    await produce(setup.topics.kafka, setup.topic, [encoded('user_activity', second)]);
    await waitFor(
      'second anonymous event',
      () => rowOf(second.event_id as string),
      (r) => r !== undefined,
    );
    expect(await consumer.metric('consumer_profile_lookups_total')).toBeGreaterThanOrEqual(2);

    for (const id of [first.event_id, second.event_id]) {
      expect(await rowOf(id as string)).toEqual({
        actor_id: 'known',
        user_id: 'known',
        segment: 'pro',
        country: 'FR',
        gender: 'female',
        age_band: '35-44',
        is_test_account: 1,
      });
    }
    // The facts keep only the segment's name; its description and category went with the row into
    // the dimensions (the newest dim_users row is the one the second event wrote).
    const rs = await setup.db.client.query({
      query: `SELECT toString(version) AS version, segment_description, segment_category, country_code
              FROM dim_users FINAL WHERE user_id = 'known'`,
      format: 'JSONEachRow',
    });
    expect(await rs.json()).toEqual([
      {
        version: String(second.activity_timestamp),
        segment_description: 'paying teams',
        segment_category: 'paid',
        country_code: 'FR',
      },
    ]);
    consumer.child.kill('SIGTERM');
    expect(await consumer.exited).toBe(0);
  });

  it('re-drives dead-lettered messages: fixed ones land, still-poison ones return with a count', async () => {
    // Its own DLQ entries, so it needs no other test's: a good event dead-lettered earlier (say, by
    // a since-fixed bug) and two messages that are still poison.
    const fixed = activity({ user_id: 'redriven' });
    const e = encoded('user_activity', fixed);
    const dead = (m: RawMessage, reason: string): RawMessage => ({
      ...m,
      headers: {
        ...m.headers,
        'dlq-reason': reason,
        'dlq-source-topic': setup.topic,
        'dlq-source-partition': '0',
        'dlq-source-offset': '0',
      },
    });
    const stillPoison: RawMessage[] = [
      dead(
        { key: 'rp', value: Buffer.from('redrive-poison'), headers: { [SCHEMA_HEADER]: 'user_activity.v1' } },
        'undecodable',
      ),
      dead(
        { ...encoded('user_activity', activity({ user_id: 'rp' })), headers: {} },
        'missing_schema_header',
      ),
    ];
    await produce(setup.topics.kafka, setup.dlqTopic, [dead(e, 'rejected_by_clickhouse'), ...stillPoison]);
    const consumer = await setup.start();
    const run = async (args: string[]): Promise<number | null> => {
      const child = spawn(`${ROOT}node_modules/.bin/node`, ['services/consumer/redrive.ts', ...args], {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '', ...setup.env(), LOG_LEVEL: 'warn' },
        stdio: 'inherit',
      });
      return new Promise((resolve) => child.once('exit', resolve));
    };
    expect(await run(['--dry-run'])).toBe(0);
    expect(await run([])).toBe(0);
    await waitFor(
      're-driven event',
      () => rowOf(fixed.event_id as string),
      (r) => r !== undefined,
    );
    const hex = (v: Buffer | null): string => v?.toString('hex') ?? '';
    const ours = new Set(stillPoison.map((m) => hex(m.value)));
    // Returned: ours, carrying a re-drive count (the originals carry none); read until both are.
    const returned = (got: TopicMessage[]) =>
      got.filter((m) => m.headers['dlq-redrive-count'] !== undefined && ours.has(hex(m.value)));
    const back = returned(await readTopic(setup.dlqTopic, (got) => returned(got).length >= ours.size));
    expect(back.map((m) => [m.headers['dlq-reason'], m.headers['dlq-redrive-count']]).sort()).toEqual([
      ['missing_schema_header', '1'],
      ['undecodable', '1'],
    ]);
    consumer.child.kill('SIGTERM');
    expect(await consumer.exited).toBe(0);
  });

  it('writes is_first_daily_activity to the facts: 1 for the first event of an actor-day', async () => {
    const consumer = await setup.start();
    const day = Date.UTC(2026, 0, 10, 8);
    const events = [
      activity({ user_id: 'fd', activity_timestamp: day }),
      activity({ user_id: 'fd', activity_timestamp: day + 3_600_000 }),
      activity({ user_id: 'fd', activity_timestamp: day + DAY_MS }),
      activity({ user_id: 'other', activity_timestamp: day }),
    ];
    // One key, one partition: stream order is the order above.
    await produce(
      setup.topics.kafka,
      setup.topic,
      events.map((e) => ({ ...encoded('user_activity', e), key: 'fd' })),
    );
    const ids = events.map((e) => `'${e.event_id}'`).join(',');
    await waitFor(
      'flags',
      () =>
        scalar(
          setup.db.client,
          `SELECT uniqExact(event_id) FROM fact_user_activity WHERE event_id IN (${ids})`,
        ),
      (n) => n === 4,
    );
    const rs = await setup.db.client.query({
      query: `SELECT event_id, max(is_first_daily_activity) AS f FROM fact_user_activity
              WHERE event_id IN (${ids}) GROUP BY event_id`,
      format: 'JSONEachRow',
    });
    const flags = new Map((await rs.json<{ event_id: string; f: number }>()).map((r) => [r.event_id, r.f]));
    expect(events.map((e) => flags.get(e.event_id as string))).toEqual([1, 0, 1, 1]);
    consumer.child.kill('SIGTERM');
    expect(await consumer.exited).toBe(0);
  });

  async function rowOf(eventId: string): Promise<Record<string, unknown> | undefined> {
    const rs = await setup.db.client.query({
      query: `SELECT actor_id, user_id, segment, country, gender, age_band, is_test_account
              FROM fact_user_activity WHERE event_id = '${eventId}' LIMIT 1`,
      format: 'JSONEachRow',
    });
    const [row] = await rs.json<Record<string, unknown>>();
    return row;
  }

  interface TopicMessage {
    readonly partition: number;
    readonly offset: string;
    readonly value: Buffer | null;
    readonly headers: Record<string, string>;
  }

  /** Reads `name` from its start until `enough` says so. */
  async function readTopic(name: string, enough: (got: TopicMessage[]) => boolean): Promise<TopicMessage[]> {
    const reader = setup.topics.kafka.consumer({ groupId: uniqueName('topic-reader') });
    await reader.connect();
    await reader.subscribe({ topic: name, fromBeginning: true });
    const out: TopicMessage[] = [];
    await new Promise<void>((resolve, reject) => {
      reader
        .run({
          eachMessage: async ({ partition, message }) => {
            const headers: Record<string, string> = {};
            for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
            out.push({ partition, offset: message.offset, value: message.value, headers });
            if (enough(out)) resolve();
          },
        })
        .catch(reject);
    });
    await reader.disconnect();
    return out;
  }
});
