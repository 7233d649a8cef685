/**
 * Regression (issue 10, reproduction 0): a batch with ~10k new 18-character user ids made the
 * profile look-up's `IN (...)` list exceed ClickHouse's max_query_size (262144 bytes, code 62); the
 * look-up was retried forever with fetching paused and nothing more was written. Here a single
 * batch carries more than 20k distinct users and 20k distinct anonymous ids (both look-ups) through
 * the real consumer: every row lands and the group lag returns to 0.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  activity,
  type ConsumerSetup,
  consumerSetup,
  distinctEvents,
  encoded,
  groupLag,
  produce,
  waitFor,
} from '../harness/consumer-process.ts';

const USERS = 21_000;
const ANONYMOUS = 21_000;

/** `sqmx2bvuw9_u535865`-like: 18 characters, as in the report. */
const userId = (i: number): string => `sqmx2bvuw9_u${String(i).padStart(6, '0')}`;

describe('consumer look-ups with many new users', () => {
  let setup: ConsumerSetup;

  beforeAll(async () => {
    setup = await consumerSetup('consumer_lookups', 1);
  });

  afterAll(async () => {
    await setup?.close();
  });

  it('writes a batch of >20k new users and >20k new anonymous ids (look-ups under max_query_size)', async () => {
    const messages = [];
    for (let i = 0; i < USERS; i++) messages.push(encoded('user_activity', activity({ user_id: userId(i) })));
    for (let i = 0; i < ANONYMOUS; i++) {
      messages.push(encoded('user_activity', activity({ anonymous_id: `anon_${userId(i)}` })));
    }
    // Produced before the consumer starts, with caps above the total: one fetch, one batch.
    await produce(setup.topics.kafka, setup.topic, messages);
    const consumer = await setup.start({
      BATCH_MAX_ROWS: '100000',
      BATCH_MAX_BYTES: String(64 * 1024 * 1024),
      FLUSH_INTERVAL_MS: '5000',
    });

    const total = USERS + ANONYMOUS;
    expect(
      await waitFor(
        `${total} events`,
        () => distinctEvents(setup.db.client),
        (n) => n >= total,
        100_000,
      ),
    ).toBe(total);
    await waitFor(
      'lag 0',
      () => groupLag(setup.admin, setup.groupId, setup.topic),
      (n) => n === 0,
    );
    expect(await consumer.metric('consumer_dlq_messages_total')).toBeNaN();
    consumer.child.kill('SIGTERM');
    expect(await consumer.exited).toBe(0);
  }, 180_000);
});
