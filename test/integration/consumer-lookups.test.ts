/**
 * Regression (issue 10, reproduction 0): a batch with ~10k new 18-character user ids made the
 * profile look-up's `IN (...)` list exceed ClickHouse's max_query_size (262144 bytes, code 62); the
 * look-up was retried forever with fetching paused and nothing more was written. Then, with a
 * million users, the (chunked) look-up of every new id made the consumer slower than the
 * collector: it now asks only about ids its known-id sets name (services/consumer/profiles.ts).
 * Here single batches of more than 20k users and 20k anonymous ids go through the real consumer:
 * ids ClickHouse knows (identified before it started: chunked look-ups, profiles applied) and ids
 * nobody knows (no look-up at all). Every row lands and the group lag returns to 0. The known-id
 * queries, the re-delivery look-up and migration 0010 also run on current ClickHouse (chDB).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toIngestActivityRow, toIngestIdentifyRow } from '../../services/consumer/ingest-row.ts';
import {
  identifiedSinceQuery,
  identityQueries,
  KNOWN_LINKS_QUERY,
  KNOWN_PROFILES_QUERY,
  profileQueries,
  writtenActorsQueries,
} from '../../services/consumer/lookups.ts';
import { attributeBits, PROFILE_FIELDS, type Profile } from '../../services/consumer/profiles.ts';
import { loadMigrations } from '../../services/lib/datamodel/migrate.ts';
import { groupLag, produce } from '../fixtures/kafka.ts';
import { activity, encoded, identify } from '../fixtures/records.ts';
import { runChdb } from '../harness/chdb.ts';
import {
  type ConsumerProcess,
  type ConsumerSetup,
  consumerSetup,
  distinctEvents,
  scalar,
  waitFor,
} from '../harness/consumer-process.ts';

const USERS = 21_000;
const ANONYMOUS = 21_000;

/** `sqmx2bvuw9_u535865`-like: 18 characters, as in the report. */
const userId = (prefix: string, i: number): string => `${prefix}_u${String(i).padStart(6, '0')}`;

/** A profile with only `over`'s attributes. */
const profileOf = (over: Partial<Profile>): Profile =>
  ({ ...Object.fromEntries(PROFILE_FIELDS.map((f) => [f, null])), ...over }) as Profile;

/** A counter's value for one label value, from the consumer's /metrics. */
async function labelled(consumer: ConsumerProcess, name: string, label: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${await consumer.port()}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(label));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('consumer look-ups with many users', () => {
  let setup: ConsumerSetup;

  beforeAll(async () => {
    setup = await consumerSetup('consumer_lookups', 1);
  });

  afterAll(async () => {
    await setup?.close();
  });

  function batchOf(prefix: string) {
    const messages = [];
    for (let i = 0; i < USERS; i++) {
      messages.push(encoded('user_activity', activity({ user_id: userId(prefix, i) })));
    }
    for (let i = 0; i < ANONYMOUS; i++) {
      messages.push(encoded('user_activity', activity({ anonymous_id: `anon_${userId(prefix, i)}` })));
    }
    return messages;
  }

  async function drain(total: number): Promise<void> {
    await waitFor(
      `${total} events`,
      () => distinctEvents(setup.db.client),
      (n) => n >= total,
      100_000,
    );
    expect(await distinctEvents(setup.db.client)).toBe(total);
    await waitFor(
      'lag 0',
      () => groupLag(setup.admin, setup.groupId, setup.topic),
      (n) => n === 0,
    );
  }

  // Caps above the total: one fetch, one batch.
  const oneBatch = {
    BATCH_MAX_ROWS: '100000',
    BATCH_MAX_BYTES: String(64 * 1024 * 1024),
    FLUSH_INTERVAL_MS: '5000',
  };

  it('writes a batch of >20k known users and >20k linked anonymous ids (look-ups under max_query_size)', async () => {
    // Identified before the consumer starts (another member, earlier): users with a profile, and
    // the anonymous ids linked to them. The consumer reads them at start and looks each one up.
    const identifies = [];
    for (let i = 0; i < USERS; i++) {
      identifies.push(
        toIngestIdentifyRow(
          identify({
            user_id: userId('knownuser9', i),
            anonymous_id: `anon_${userId('knownuser9', i)}`,
            segment_name: 'pro',
          }) as never,
        ),
      );
    }
    await setup.db.client.insert({
      table: 'ingest_user_identify',
      format: 'JSONEachRow',
      values: identifies,
    });
    await produce(setup.topics.kafka, setup.topic, batchOf('knownuser9'));
    const consumer = await setup.start(oneBatch);
    await drain(USERS + ANONYMOUS);
    // Every anonymous event resolved to its user, and every event got the profile.
    expect(
      await scalar(
        setup.db.client,
        "SELECT countIf(segment = 'pro' AND actor_id LIKE 'knownuser9_u%') FROM fact_user_activity",
      ),
    ).toBe(USERS + ANONYMOUS);
    expect(await labelled(consumer, 'consumer_profile_lookups_total', 'kind="profile"')).toBeGreaterThan(0);
    expect(await labelled(consumer, 'consumer_profile_lookups_total', 'kind="identity"')).toBeGreaterThan(0);
    expect(await consumer.metric('consumer_dlq_messages_total')).toBeNaN();
    consumer.child.kill('SIGTERM');
    expect(await consumer.exited).toBe(0);
  }, 180_000);

  it('writes a batch of >20k new users and >20k new anonymous ids without looking any of them up', async () => {
    const before = await distinctEvents(setup.db.client);
    await produce(setup.topics.kafka, setup.topic, batchOf('sqmx2bvuw9'));
    const consumer = await setup.start(oneBatch);
    await drain(before + USERS + ANONYMOUS);
    expect(await labelled(consumer, 'consumer_profile_lookups_total', 'kind="profile"')).toBe(0);
    expect(await labelled(consumer, 'consumer_profile_lookups_total', 'kind="identity"')).toBe(0);
    expect(await labelled(consumer, 'consumer_profile_lookups_total', 'kind="known_all"')).toBe(1);
    expect(await consumer.metric('consumer_dlq_messages_total')).toBeNaN();
    consumer.child.kill('SIGTERM');
    expect(await consumer.exited).toBe(0);
  }, 180_000);

  it('the look-up queries and identify_log (migration 0010) answer alike on 18.16 and current ClickHouse', async () => {
    const rows = [
      identify({ user_id: 'cu1', anonymous_id: 'ca1', segment_name: 'pro' }),
      identify({ user_id: 'cu2', kind: 'alias', previous_id: 'cold2' }),
      identify({ user_id: 'cu3', gender: 'f', registration_date: 0 }),
    ].map((r) => toIngestIdentifyRow(r as never));
    const at = Date.UTC(2025, 0, 10, 1);
    const activities = [
      activity({ event_id: 'cw-e1', anonymous_id: 'cw-anon', user_id: null, activity_timestamp: at }),
      activity({ event_id: 'cw-e2', user_id: 'cw-user', activity_timestamp: at + 86_400_000 }),
    ].map((r) => toIngestActivityRow(r as never, { resolvedUserId: null, isFirstDailyActivity: false }));
    const probes = ['cw-e1', 'cw-e2', 'nobody'].map((eventId, i) => ({
      eventId,
      activityTimestamp: at + i * 86_400_000,
    }));
    const queries = [
      `SELECT * FROM (${identifiedSinceQuery(0)}) WHERE user_id LIKE 'cu%' ORDER BY user_id`,
      `SELECT * FROM (${KNOWN_PROFILES_QUERY}) WHERE user_id LIKE 'cu%' ORDER BY user_id`,
      `SELECT * FROM (${KNOWN_LINKS_QUERY}) WHERE anonymous_id IN ('ca1', 'cold2') ORDER BY anonymous_id`,
      ...profileQueries(['cu1', 'cu3', 'nobody']).map((q) => `SELECT * FROM (${q}) ORDER BY user_id`),
      ...identityQueries(['ca1', 'cold2', 'nobody']).map((q) => `SELECT * FROM (${q}) ORDER BY anonymous_id`),
      ...writtenActorsQueries(probes).map((q) => `SELECT * FROM (${q}) ORDER BY event_id`),
    ];
    await setup.db.client.insert({ table: 'ingest_user_identify', format: 'JSONEachRow', values: rows });
    await setup.db.client.insert({
      table: 'ingest_user_activity',
      format: 'JSONEachRow',
      values: activities,
    });
    const server: string[] = [];
    for (const q of queries) {
      const rs = await setup.db.client.query({ query: q, format: 'JSONEachRow' });
      server.push(JSON.stringify(await rs.json()));
    }
    expect(JSON.parse(server[0] ?? '[]')).toEqual([
      { kind: 'identify', user_id: 'cu1', linked_id: 'ca1' },
      { kind: 'alias', user_id: 'cu2', linked_id: 'cold2' },
      { kind: 'identify', user_id: 'cu3', linked_id: '' },
    ]);
    // Which attributes each profile holds (PROFILE_FIELDS' bits), as the consumer computes them.
    expect(JSON.parse(server[1] ?? '[]')).toEqual([
      { user_id: 'cu1', bits: attributeBits(profileOf({ segment_name: 'pro' })) },
      { user_id: 'cu3', bits: attributeBits(profileOf({ gender: 'f', registration_date: 0 })) },
    ]);
    expect(JSON.parse(server[3] ?? '[]')).toMatchObject([
      { user_id: 'cu1', segment_name: 'pro', gender: null, registration_date: null },
      // 1970-01-01 00:00:00: 18.16 prints it as 0000-00-00 00:00:00; read as seconds it is 0.
      { user_id: 'cu3', segment_name: null, gender: 'f', registration_date: 0 },
    ]);
    expect(JSON.parse(server[4] ?? '[]')).toEqual([
      { anonymous_id: 'ca1', user_id: 'cu1' },
      { anonymous_id: 'cold2', user_id: 'cu2' },
    ]);
    expect(JSON.parse(server[5] ?? '[]')).toEqual([
      { event_id: 'cw-e1', actor_id: 'anon:cw-anon' },
      { event_id: 'cw-e2', actor_id: 'cw-user' },
    ]);
    const { results } = runChdb(mkdtempSync(join(tmpdir(), 'chdb-lookups-')), [
      ...loadMigrations().flatMap((m) => m.statements.map((sql) => ({ sql }))),
      {
        sql: `INSERT INTO ingest_user_identify FORMAT JSONEachRow ${rows.map((r) => JSON.stringify(r)).join('\n')}`,
      },
      {
        sql: `INSERT INTO ingest_user_activity FORMAT JSONEachRow ${activities.map((r) => JSON.stringify(r)).join('\n')}`,
      },
      ...queries.map((sql) => ({ sql, format: 'JSONEachRow' })),
    ]);
    const current = results.slice(-queries.length).map((text) =>
      JSON.stringify(
        text
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => JSON.parse(l)),
      ),
    );
    expect(current).toEqual(server);
  }, 180_000);
});
