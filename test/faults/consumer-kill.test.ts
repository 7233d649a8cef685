/**
 * kill -9 of the consumer in the middle of a 120k-event stream, a restart, a graceful stop in the
 * middle of the catch-up, another restart: no offset is ever committed ahead of the rows in
 * ClickHouse, no event is missing (distinct event_ids in the fact table), and the active-user
 * numbers equal the exact truth, so the re-delivered tail changed nothing. Runs on the shared stack: killing the consumer process
 * disturbs no other test file.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  activeUsers,
  activityStream,
  type ConsumerSetup,
  committedTotal,
  consumerSetup,
  distinctEvents,
  groupLag,
  produce,
  scalar,
  waitFor,
} from '../harness/consumer-process.ts';

const EVENTS = 120_000;

describe('consumer killed with SIGKILL mid-stream', () => {
  let setup: ConsumerSetup;

  beforeAll(async () => {
    setup = await consumerSetup('consumer_kill', 6);
  });

  afterAll(async () => {
    await setup?.close();
  });

  it('loses nothing and counts every active user exactly once after a restart', async () => {
    const { db, topics, admin, topic, groupId } = setup;
    // Smaller batches than the default so the kill lands between many uncommitted writes.
    const smallBatches = { BATCH_MAX_ROWS: '2000' };
    const stream = activityStream(EVENTS, 3_000, 3, 'kill');
    // The whole stream is in Kafka first, so the consumer (not the producer) sets the pace and the
    // kills land while batches are being written.
    await produce(topics.kafka, topic, stream.messages);
    // Kills at moments the test does not choose: a random 0.1-1 s after each start (the whole
    // stream takes a few seconds), each followed by a check of the offset invariant: every
    // committed offset is backed by rows in ClickHouse (the topic holds only distinct events).
    const stops: string[] = [];
    for (const signal of ['SIGKILL', 'SIGKILL', 'SIGKILL', 'SIGTERM'] as const) {
      const c = await setup.start(smallBatches);
      await sleep(100 + Math.random() * 900);
      c.child.kill(signal);
      expect(await c.exited).toBe(signal === 'SIGKILL' ? null : 0);
      const committed = await committedTotal(admin, groupId, topic);
      const written = await distinctEvents(db.client);
      stops.push(`${signal}: written ${written}, committed ${committed}`);
      expect(committed).toBeLessThanOrEqual(written);
    }

    const third = await setup.start(smallBatches);
    const distinct = await waitFor(
      'every event',
      () => distinctEvents(db.client),
      (n) => n >= EVENTS,
      150_000,
    );
    await waitFor(
      'lag 0',
      () => groupLag(admin, groupId, topic),
      (n) => n === 0,
    );
    const rows = await scalar(db.client, 'SELECT count() FROM fact_user_activity');
    const au = await activeUsers(db.client);
    process.stderr.write(
      `[consumer-kill] ${stops.join('; ')}; ` +
        `final distinct ${distinct}, fact rows ${rows} (duplicates not merged away yet: ${rows - distinct})\n`,
    );

    expect(distinct).toBe(EVENTS);
    expect(await scalar(db.client, `SELECT uniqExact(event_id) FROM fact_user_activity`)).toBe(
      stream.eventIds.size,
    );
    expect(Object.fromEntries(au.rollup)).toEqual(Object.fromEntries(stream.dau));
    expect(Object.fromEntries(au.facts)).toEqual(Object.fromEntries(stream.dau));
    expect(au.mauRollup).toBe(stream.users);

    third.child.kill('SIGTERM');
    expect(await third.exited).toBe(0);
  });
});
