/**
 * Profile semantics against the real consumer, Kafka and ClickHouse: a user's profile is, per
 * attribute, the newest non-null value seen. Regressions: a partial identify wiped the earlier
 * traits, and an activity row written without the profile (its writer did not know the user yet)
 * hid the identify's attributes from the look-up a restarted consumer makes, and from dim_users.
 * The consumer looks up only ids its known-id sets name (profiles.ts): another member's identify
 * must reach them within CONTEXT_REFRESH_INTERVAL_MS, and a restart must read them back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toIngestActivityRow, toIngestIdentifyRow } from '../../services/consumer/ingest-row.ts';
import { profileQuery } from '../../services/consumer/lookups.ts';
import { produce } from '../fixtures/kafka.ts';
import { activity, encoded, identify } from '../fixtures/records.ts';
import { type ConsumerSetup, consumerSetup, scalar, waitFor } from '../harness/consumer-process.ts';

describe('consumer profiles', () => {
  let setup: ConsumerSetup;

  beforeAll(async () => {
    setup = await consumerSetup('consumer_profiles', 2);
  });

  afterAll(async () => {
    await setup?.close();
  });

  async function rows(query: string): Promise<Record<string, unknown>[]> {
    const rs = await setup.db.client.query({ query, format: 'JSONEachRow' });
    return rs.json<Record<string, unknown>>();
  }

  /** The fact row of an event once it is written. */
  async function fact(eventId: string): Promise<Record<string, unknown>> {
    const found = await waitFor(
      `fact ${eventId}`,
      () =>
        rows(`SELECT actor_id, segment, gender, country FROM fact_user_activity
              WHERE event_id = '${eventId}' LIMIT 1`),
      (r) => r.length === 1,
    );
    return found[0] ?? {};
  }

  /** The newest dim_users row of a user after ClickHouse merged every row of it away but one. */
  async function mergedDimUser(userId: string): Promise<Record<string, unknown>[]> {
    await setup.db.client.command({ query: 'OPTIMIZE TABLE dim_users FINAL' });
    return rows(`SELECT segment_name, gender, account_status, country_code FROM dim_users
                 WHERE user_id = '${userId}'`);
  }

  it('an identify with only some traits keeps the earlier ones, in dim_users and in later facts', async () => {
    let consumer = await setup.start();
    const t = Date.now();
    await produce(setup.topics.kafka, setup.topic, [
      encoded(
        'user_identify',
        identify({ user_id: 'partial', identified_at: t, segment_name: 'pro', gender: 'f' }),
      ),
      encoded(
        'user_identify',
        identify({ user_id: 'partial', identified_at: t + 1, account_status: 'active' }),
      ),
    ]);
    // One batch or two: the view keeps the newest row of a block per user, so wait for the second.
    await waitFor(
      'second identify',
      () =>
        scalar(
          setup.db.client,
          "SELECT countIf(account_status = 'active') FROM dim_users WHERE user_id = 'partial'",
        ),
      (n) => n === 1,
    );
    expect(await mergedDimUser('partial')).toEqual([
      { segment_name: 'pro', gender: 'f', account_status: 'active', country_code: null },
    ]);
    // A separate process and batch from the identifies: the profile comes from the running cache.
    const later = activity({ user_id: 'partial', activity_timestamp: t + 2 });
    await produce(setup.topics.kafka, setup.topic, [encoded('user_activity', later)]);
    expect(await fact(later.event_id as string)).toEqual({
      actor_id: 'partial',
      segment: 'pro',
      gender: 'f',
      country: '',
    });
    // account_status is a dim_users attribute only (the facts have no column for it); the newest
    // row, the activity's, carries it because the consumer filled it from the merged profile.
    expect(await mergedDimUser('partial')).toEqual([
      { segment_name: 'pro', gender: 'f', account_status: 'active', country_code: null },
    ]);

    // After a restart (empty cache) an identify merges over the profile looked up in dim_users.
    consumer.child.kill('SIGTERM');
    expect(await consumer.exited).toBe(0);
    consumer = await setup.start();
    await produce(setup.topics.kafka, setup.topic, [
      encoded('user_identify', identify({ user_id: 'partial', identified_at: t + 3, country_code: 'SE' })),
    ]);
    await waitFor(
      'identify after the restart',
      () =>
        scalar(
          setup.db.client,
          "SELECT countIf(country_code = 'SE') FROM dim_users WHERE user_id = 'partial'",
        ),
      (n) => n === 1,
    );
    expect(await mergedDimUser('partial')).toEqual([
      { segment_name: 'pro', gender: 'f', account_status: 'active', country_code: 'SE' },
    ]);
    consumer.child.kill('SIGTERM');
    expect(await consumer.exited).toBe(0);
  });

  it('an activity written without the profile does not hide it after a restart (regression: newer empty row won)', async () => {
    let consumer = await setup.start();
    const t = Date.now();
    await produce(setup.topics.kafka, setup.topic, [
      encoded(
        'user_identify',
        identify({
          user_id: 'raced',
          identified_at: t,
          segment_name: 'team',
          gender: 'm',
          country_code: 'NL',
        }),
      ),
    ]);
    await waitFor(
      'identify row',
      () => scalar(setup.db.client, "SELECT count() FROM dim_users WHERE user_id = 'raced'"),
      (n) => n === 1,
    );
    consumer.child.kill('SIGTERM');
    expect(await consumer.exited).toBe(0);

    // Newer activity of the same user written by a member that did not know the profile yet (its
    // identify on another partition): one without any attribute, one with only the event's geo
    // country. Through the ingest table, as the consumer writes.
    await setup.db.client.insert({
      table: 'ingest_user_activity',
      format: 'JSONEachRow',
      values: [
        toIngestActivityRow(activity({ user_id: 'raced', activity_timestamp: t + 60_000 }) as never),
        toIngestActivityRow(
          activity({ user_id: 'raced', activity_timestamp: t + 61_000, country_code: 'DE' }) as never,
        ),
      ],
    });
    const [lookedUp] = await rows(profileQuery(['raced']));
    expect(lookedUp).toMatchObject({
      user_id: 'raced',
      segment_name: 'team',
      gender: 'm',
      country_code: 'NL',
    });
    // Merged down to one row per user, the identify's attributes are still the newest.
    expect(await mergedDimUser('raced')).toEqual([
      { segment_name: 'team', gender: 'm', account_status: null, country_code: 'NL' },
    ]);

    // A restarted consumer (empty cache) looks the profile up and fills the facts with it.
    consumer = await setup.start();
    const after = activity({ user_id: 'raced', activity_timestamp: t + 120_000 });
    await produce(setup.topics.kafka, setup.topic, [encoded('user_activity', after)]);
    expect(await fact(after.event_id as string)).toEqual({
      actor_id: 'raced',
      segment: 'team',
      gender: 'm',
      country: 'NL',
    });
    expect(await consumer.metric('consumer_profile_lookups_total')).toBeGreaterThanOrEqual(1);
    consumer.child.kill('SIGTERM');
    expect(await consumer.exited).toBe(0);
  });

  it("another member's identify is applied within CONTEXT_REFRESH_INTERVAL_MS, and after a restart", async () => {
    const refreshMs = 1_000;
    let consumer = await setup.start({ CONTEXT_REFRESH_INTERVAL_MS: String(refreshMs) });
    const t = Date.now();
    const before = activity({ anonymous_id: 'elsewhere-anon', activity_timestamp: t });
    await produce(setup.topics.kafka, setup.topic, [encoded('user_activity', before)]);
    expect(await fact(before.event_id as string)).toMatchObject({
      actor_id: 'anon:elsewhere-anon',
      segment: '',
    });

    // Another member writes the identify (its partition, its insert): straight into the ingest
    // table, as that member's consumer does. Nothing of it passes through this consumer.
    await setup.db.client.insert({
      table: 'ingest_user_identify',
      format: 'JSONEachRow',
      values: [
        toIngestIdentifyRow(
          identify({
            user_id: 'elsewhere',
            anonymous_id: 'elsewhere-anon',
            identified_at: t + 1,
            segment_name: 'team',
            gender: 'f',
          }) as never,
        ),
      ],
    });
    const acknowledged = Date.now();
    // A batch prefetched after the bound has it (plus slack for the batch's own flush interval).
    await new Promise((r) => setTimeout(r, refreshMs + 200));
    const after = activity({ anonymous_id: 'elsewhere-anon', activity_timestamp: t + 2 });
    await produce(setup.topics.kafka, setup.topic, [encoded('user_activity', after)]);
    expect(await fact(after.event_id as string)).toMatchObject({
      actor_id: 'elsewhere',
      segment: 'team',
      gender: 'f',
    });
    expect(Date.now() - acknowledged).toBeGreaterThan(refreshMs);
    consumer.child.kill('SIGTERM');
    expect(await consumer.exited).toBe(0);

    // A restarted consumer (empty caches) reads the link and the profile back from ClickHouse.
    consumer = await setup.start();
    const restarted = activity({ anonymous_id: 'elsewhere-anon', activity_timestamp: t + 3 });
    await produce(setup.topics.kafka, setup.topic, [encoded('user_activity', restarted)]);
    expect(await fact(restarted.event_id as string)).toMatchObject({
      actor_id: 'elsewhere',
      segment: 'team',
      gender: 'f',
    });
    consumer.child.kill('SIGTERM');
    expect(await consumer.exited).toBe(0);
  });
});
