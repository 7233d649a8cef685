/**
 * Two consumer processes in one group: the second joins mid-stream (a rebalance while the first
 * has batches in flight), then the first is killed with SIGKILL: the survivor takes over its
 * partitions after the session timeout, and every event ends up in ClickHouse with the
 * active-user numbers exact.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  activeUsers,
  activityStream,
  type ConsumerProcess,
  type ConsumerSetup,
  consumerSetup,
  distinctEvents,
  groupLag,
  produce,
  waitFor,
} from '../harness/consumer-process.ts';

const EVENTS = 60_000;

/** The partitions a consumer logged as assigned most recently. */
function assigned(c: ConsumerProcess): number[] {
  const line = [...c.logs].reverse().find((l) => l.includes('"partitions assigned"'));
  return line ? (JSON.parse(line) as { partitions: number[] }).partitions : [];
}

describe('two consumers in one group, one killed', () => {
  let setup: ConsumerSetup;

  beforeAll(async () => {
    setup = await consumerSetup('consumer_group', 6);
  });

  afterAll(async () => {
    await setup?.close();
  });

  it('the survivor takes over the partitions and nothing is lost', async () => {
    const { db, topics, admin, topic, groupId } = setup;
    const smallBatches = { BATCH_MAX_ROWS: '2000' };
    const stream = activityStream(EVENTS, 2_000, 3, 'group');
    const a = await setup.start(smallBatches);
    const producing = produce(topics.kafka, topic, stream.messages);
    await waitFor(
      'a tenth written',
      () => distinctEvents(db.client),
      (n) => n >= EVENTS / 10,
    );
    // b joins mid-stream: a's partitions are revoked while its batches are in flight.
    const b = await setup.start(smallBatches);
    await waitFor(
      'partitions shared',
      async () => [assigned(a).length, assigned(b).length],
      ([x = 0, y = 0]) => x > 0 && y > 0 && x + y === 6,
      60_000,
    );
    const sharedAs = { a: assigned(a), b: assigned(b) };
    await waitFor(
      'a quarter written',
      () => distinctEvents(db.client),
      (n) => n >= EVENTS / 4,
    );
    a.child.kill('SIGKILL');
    await a.exited;
    await producing;

    await waitFor(
      'survivor owns all partitions',
      async () => assigned(b).length,
      (n) => n === 6,
      60_000,
    );
    const distinct = await waitFor(
      'every event',
      () => distinctEvents(db.client),
      (n) => n >= EVENTS,
      120_000,
    );
    await waitFor(
      'lag 0',
      () => groupLag(admin, groupId, topic),
      (n) => n === 0,
    );
    const au = await activeUsers(db.client);
    process.stderr.write(
      `[consumer-group] shared ${JSON.stringify(sharedAs)}, after kill b owns ${JSON.stringify(assigned(b))}; ` +
        `distinct ${distinct}\n`,
    );

    expect(distinct).toBe(EVENTS);
    expect(Object.fromEntries(au.rollup)).toEqual(Object.fromEntries(stream.dau));
    expect(au.mauRollup).toBe(stream.users);
    expect(b.child.exitCode).toBeNull();

    b.child.kill('SIGTERM');
    expect(await b.exited).toBe(0);
  });
});
