/**
 * A re-delivered event keeps the actor it was first written under (services/consumer/profiles.ts,
 * "Re-delivery keeps the actor"). The case: an anonymous event is written and committed, its
 * anonymous id is then linked to a user, and the group's offset goes back before the event, as
 * when a consumer dies after its insert and before its commit. Re-keyed on re-delivery, the event
 * had a second fact row under the user, and the hourly sketches counted two users on its day for
 * one event (dau 2). The exact path (LIMIT 1 BY event_id) hid it; the sketch path is what the API
 * serves for open days and ad-hoc slices.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { groupLag, produce } from '../fixtures/kafka.ts';
import { activity, encoded, identify } from '../fixtures/records.ts';
import {
  activeUsers,
  type ConsumerSetup,
  consumerSetup,
  scalar,
  waitFor,
} from '../harness/consumer-process.ts';

describe('consumer re-delivery after a link', () => {
  let setup: ConsumerSetup;

  beforeAll(async () => {
    setup = await consumerSetup('consumer_redelivery', 1);
  });

  afterAll(async () => {
    await setup?.close();
  });

  const actors = (eventId: string): Promise<string[]> =>
    setup.db.client
      .query({
        query: `SELECT actor_id FROM fact_user_activity WHERE event_id = '${eventId}' ORDER BY actor_id`,
        format: 'JSONEachRow',
      })
      .then((rs) => rs.json<{ actor_id: string }>())
      .then((rows) => rows.map((r) => r.actor_id));

  const caughtUp = (): Promise<number> =>
    waitFor(
      'the group to commit every message',
      () => groupLag(setup.admin, setup.groupId, setup.topic),
      (n) => n === 0,
    );

  it('writes the event again under its first actor, so the sketches count one user', async () => {
    const day = Date.UTC(2025, 0, 10);
    const first = await setup.start();
    const event = activity({ anonymous_id: 'rd-anon', user_id: null, activity_timestamp: day + 3_600_000 });
    const eventId = event.event_id as string;
    await produce(setup.topics.kafka, setup.topic, [encoded('user_activity', event)]);
    await waitFor(
      'the anonymous fact row',
      () => actors(eventId),
      (a) => a.length === 1,
    );
    await caughtUp();
    await produce(setup.topics.kafka, setup.topic, [
      encoded('user_identify', identify({ user_id: 'rd-known', anonymous_id: 'rd-anon' })),
    ]);
    await waitFor(
      'the link',
      () => scalar(setup.db.client, "SELECT count() FROM identity_map WHERE anonymous_id = 'rd-anon'"),
      (n) => n >= 1,
    );
    await caughtUp();
    first.child.kill('SIGTERM');
    await first.exited;

    // Written, and then the commit "lost": the next member gets the event again.
    await setup.admin.setOffsets({
      groupId: setup.groupId,
      topic: setup.topic,
      partitions: [{ partition: 0, offset: '0' }],
    });
    const second = await setup.start();
    await waitFor(
      'the re-delivery to be written',
      () => actors(eventId),
      (a) => a.length === 2,
    );
    await caughtUp();

    // The link still applies to what arrives after the assignment (the next day, counted apart).
    const later = activity({
      anonymous_id: 'rd-anon',
      user_id: null,
      activity_timestamp: day + 86_400_000 + 3_600_000,
    });
    await produce(setup.topics.kafka, setup.topic, [encoded('user_activity', later)]);
    await waitFor(
      'the later event',
      () => actors(later.event_id as string),
      (a) => a.length === 1,
    );

    expect(await actors(eventId)).toEqual(['anon:rd-anon', 'anon:rd-anon']);
    expect(await actors(later.event_id as string)).toEqual(['rd-known']);
    // An insert reaches the facts before the rollups (views run one after another).
    const { rollup, facts } = await waitFor(
      'the later event in the rollups',
      () => activeUsers(setup.db.client),
      (u) => u.rollup.has('2025-01-11'),
    );
    expect(rollup.get('2025-01-10')).toBe(1);
    expect(facts.get('2025-01-10')).toBe(1);
    expect(rollup.get('2025-01-11')).toBe(1);
    expect(await second.metric('consumer_redelivered_actor_kept_total')).toBe(1);
  });
});
