/**
 * kill -9 of the consumer while ClickHouse is executing one of its inserts, three times, then a
 * graceful stop also in the middle of an insert, then a restart that catches up. "In the middle" is
 * observed, not hoped for: once the run has committed, and after a seeded delay, the test polls
 * system.processes until an insert of the consumer is running and only then sends the signal (a private ClickHouse, so no other test's
 * insert can be mistaken for it; Kafka is the shared one). After each stop no committed offset is
 * ahead of the rows in ClickHouse, and at the end every event is counted exactly once with
 * DAU/WAU/MAU equal to the truth, so the re-delivered batches changed nothing.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PrivateStack, privateStack } from '../../deploy/local/private-stack.ts';
import { rng } from '../../services/demo/generator.ts';
import { committedTotal, groupLag, produce } from '../fixtures/kafka.ts';
import {
  activityStream,
  type ConsumerSetup,
  consumerSetup,
  distinctEvents,
  nextInsertInFlight,
  waitFor,
} from '../harness/consumer-process.ts';
import { checkAckedCounted, expectAckedCounted } from '../harness/invariant.ts';
import { kafkaBrokers } from '../harness/services.ts';

const EVENTS = 60_000;
const SEED = 10_002;

describe('consumer killed with SIGKILL while an insert is in flight', () => {
  let stack: PrivateStack;
  let setup: ConsumerSetup;

  beforeAll(async () => {
    stack = await privateStack('consumer-kill');
    await stack.startClickhouse();
    setup = await consumerSetup('consumer_kill', 6, {
      kafkaBrokers: kafkaBrokers().join(','),
      clickhouseUrl: stack.clickhouseUrl,
    });
  });

  afterAll(async () => {
    await setup?.close();
    await stack?.destroy();
  });

  it('loses nothing and counts every active user exactly once after restarts', async () => {
    const { db, topics, admin, topic, groupId } = setup;
    const random = rng(SEED);
    // Smaller batches than the default so a run has many inserts to land in.
    const smallBatches = { BATCH_MAX_ROWS: '2000' };
    const stream = activityStream(EVENTS, 3_000, 3, 'kill');
    // The whole stream is in Kafka first, so the consumer sets the pace and there is always a
    // next insert to catch.
    await produce(topics.kafka, topic, stream.messages);
    const stops: string[] = [];
    let committedBefore = 0;
    for (const signal of ['SIGKILL', 'SIGKILL', 'SIGKILL', 'SIGTERM'] as const) {
      const c = await setup.start(smallBatches);
      // Past this run's first commit, so the kill lands while commits are going on: a kill during a
      // run's first insert (what a start-up delay alone gave, committed 0 at every kill) finds
      // nothing committed, and committed <= written would hold whatever the consumer committed.
      await waitFor(
        'a commit in this run',
        () => committedTotal(admin, groupId, topic),
        (n) => n > committedBefore,
      );
      await sleep(random() * 300);
      const insert = await nextInsertInFlight(db.client);
      c.child.kill(signal);
      expect(await c.exited).toBe(signal === 'SIGKILL' ? null : 0);
      const committed = await committedTotal(admin, groupId, topic);
      const written = await distinctEvents(db.client);
      stops.push(
        `${signal} during insert ${insert.query_id.slice(0, 8)} (running ${insert.elapsed.toFixed(3)} s): ` +
          `written ${written}, committed ${committed}`,
      );
      // Every committed offset is backed by rows in ClickHouse (the topic holds only distinct events).
      expect(committed).toBeLessThanOrEqual(written);
      expect(committed).toBeGreaterThan(committedBefore);
      committedBefore = committed;
    }

    const last = await setup.start(smallBatches);
    await waitFor(
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
    const report = await checkAckedCounted({
      client: db.client,
      database: db.name,
      clickhouseUrl: stack.clickhouseUrl,
      acked: stream.acked,
    });
    process.stderr.write(`[consumer-kill] seed ${SEED}; ${stops.join('; ')}; ${report.summary}\n`);

    expectAckedCounted(report);
    last.child.kill('SIGTERM');
    expect(await last.exited).toBe(0);
  });
});
