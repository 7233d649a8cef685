/**
 * kill -9 of the consumer in the middle of a 120k-event stream, then a restart: no event missing
 * (distinct event_ids in the fact table), and the active-user numbers equal the exact truth, so the
 * re-delivered tail changed nothing. Runs on the shared stack: killing the consumer process
 * disturbs no other test file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Admin } from '../../services/lib/kafka.ts';
import {
  activeUsers,
  activityStream,
  type ConsumerProcess,
  consumerEnv,
  distinctEvents,
  groupLag,
  migrated,
  produce,
  scalar,
  startConsumer,
  waitFor,
} from '../harness/consumer-process.ts';
import {
  clickhouseUrl,
  freshDatabase,
  freshTopics,
  kafkaBrokers,
  type TestDatabase,
  type TestTopics,
  uniqueName,
} from '../harness/services.ts';

const EVENTS = 120_000;

describe('consumer killed with SIGKILL mid-stream', () => {
  let db: TestDatabase;
  let topics: TestTopics;
  let admin: Admin;
  const running: ConsumerProcess[] = [];

  beforeAll(async () => {
    db = await freshDatabase('consumer_kill');
    await migrated(db.client, db.name);
    topics = await freshTopics('consumer-kill', 2, 6);
    admin = topics.kafka.admin();
    await admin.connect();
  });

  afterAll(async () => {
    for (const c of running) c.child.kill('SIGKILL');
    await admin?.disconnect();
    await topics?.drop();
    await db?.drop();
  });

  it('loses nothing and counts every active user exactly once after a restart', async () => {
    const [topic = '', dlqTopic = ''] = topics.names;
    const groupId = uniqueName('kill-group');
    const env = consumerEnv({
      kafkaBrokers: kafkaBrokers().join(','),
      clickhouseUrl: clickhouseUrl(),
      database: db.name,
      topic,
      dlqTopic,
      groupId,
      // Smaller batches than the default so the kill lands between many uncommitted writes.
      extra: { BATCH_MAX_ROWS: '2000' },
    });
    const stream = activityStream(EVENTS, 3_000, 3, 'kill');
    const half = stream.messages.length / 2;

    await produce(topics.kafka, topic, stream.messages.slice(0, half));
    const first = await startConsumer(env);
    running.push(first);
    // The second half is produced while the first consumer is writing.
    const producing = produce(topics.kafka, topic, stream.messages.slice(half));
    await waitFor(
      'a third of the stream written',
      () => distinctEvents(db.client),
      (n) => n >= EVENTS / 3,
    );
    first.child.kill('SIGKILL');
    expect(await first.exited).toBeNull();
    const atKill = await distinctEvents(db.client);
    const lagAtKill = await groupLag(admin, groupId, topic);
    await producing;

    const second = await startConsumer(env);
    running.push(second);
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
      `[consumer-kill] distinct at kill ${atKill}, committed lag at kill ${lagAtKill}, ` +
        `final distinct ${distinct}, fact rows ${rows} (re-delivered ${rows - distinct})\n`,
    );

    expect(distinct).toBe(EVENTS);
    expect(await scalar(db.client, `SELECT uniqExact(event_id) FROM fact_user_activity`)).toBe(
      stream.eventIds.size,
    );
    expect(Object.fromEntries(au.rollup)).toEqual(Object.fromEntries(stream.dau));
    expect(Object.fromEntries(au.facts)).toEqual(Object.fromEntries(stream.dau));
    expect(au.mauRollup).toBe(stream.users);

    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });
});
