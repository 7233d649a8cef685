/**
 * Rebalances while batches are in flight. Two consumer processes in one group: the second joins
 * when an insert of the first is running (seen in system.processes; the join itself lands a
 * process start later, while the first keeps inserting), then the first is killed with SIGKILL at
 * the moment an insert of the group is running: the survivor takes over its partitions after the
 * session timeout, and every event is counted exactly once with DAU/WAU/MAU equal to the truth.
 * A private ClickHouse (Kafka is the shared one), so no other test's insert is mistaken for ours.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PrivateStack, privateStack } from '../../deploy/local/private-stack.ts';
import { groupLag, produce } from '../fixtures/kafka.ts';
import {
  activityStream,
  type ConsumerProcess,
  type ConsumerSetup,
  consumerSetup,
  distinctEvents,
  nextInsertInFlight,
  waitFor,
} from '../harness/consumer-process.ts';
import { checkAckedCounted, expectAckedCounted } from '../harness/invariant.ts';
import { kafkaBrokers } from '../harness/services.ts';

const EVENTS = 60_000;

/** The partitions a consumer logged as assigned most recently. */
function assigned(c: ConsumerProcess): number[] {
  const line = [...c.logs].reverse().find((l) => l.includes('"partitions assigned"'));
  return line ? (JSON.parse(line) as { partitions: number[] }).partitions : [];
}

describe('two consumers in one group, one killed', () => {
  let stack: PrivateStack;
  let setup: ConsumerSetup;

  beforeAll(async () => {
    stack = await privateStack('consumer-group');
    await stack.startClickhouse();
    setup = await consumerSetup('consumer_group', 6, {
      kafkaBrokers: kafkaBrokers().join(','),
      clickhouseUrl: stack.clickhouseUrl,
    });
  });

  afterAll(async () => {
    await setup?.close();
    await stack?.destroy();
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
    const joinedDuring = await nextInsertInFlight(db.client);
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
    const killedDuring = await nextInsertInFlight(db.client);
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
    const report = await checkAckedCounted({
      client: db.client,
      database: db.name,
      clickhouseUrl: stack.clickhouseUrl,
      acked: stream.acked,
    });
    process.stderr.write(
      `[consumer-group] b started during insert ${joinedDuring.query_id.slice(0, 8)}, shared ${JSON.stringify(sharedAs)}; ` +
        `a killed during insert ${killedDuring.query_id.slice(0, 8)} (running ${killedDuring.elapsed.toFixed(3)} s), ` +
        `then b owns ${JSON.stringify(assigned(b))}; distinct ${distinct}; ${report.summary}\n`,
    );

    expect(distinct).toBe(EVENTS);
    expectAckedCounted(report);
    expect(b.child.exitCode).toBeNull();

    b.child.kill('SIGTERM');
    expect(await b.exited).toBe(0);
  });
});
