/**
 * Data that can never be written must not stop ingestion (issue 10: "ingestion never stops on
 * data"). Two scenarios on one consumer:
 *   - a poison message in every partition (bytes that do not decode under a real schema header,
 *     and a record with no schema header at all), between good events: all poison dead-lettered
 *     with its reason and source offset, every good event written, every partition at lag 0;
 *   - one record ClickHouse refuses, in the middle of a batch: a record that is valid Avro and
 *     passes the consumer's checks but does not fit a column (sent_at in year 1 into a UInt64), in
 *     one produce call with good records: the bad one dead-lettered with its reason, the rest of
 *     the batch written, and an event produced afterwards on the same partition written too.
 * The good records count as acknowledged (acks=all) and end in the invariant check.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCHEMA_HEADER } from '../../services/lib/avro.ts';
import { DAY_MS } from '../../services/lib/time.ts';
import { groupLag, produce } from '../fixtures/kafka.ts';
import { activity, codec, encoded, type RawMessage } from '../fixtures/records.ts';
import {
  type ConsumerProcess,
  type ConsumerSetup,
  consumerSetup,
  distinctEvents,
  readDeadLetters,
  refuseRows,
  waitFor,
} from '../harness/consumer-process.ts';
import { type AckedEvent, checkAckedCounted, expectAckedCounted } from '../harness/invariant.ts';

const PARTITIONS = 6;

describe('data the pipeline cannot write', () => {
  let setup: ConsumerSetup;
  let consumer: ConsumerProcess;
  const acked: AckedEvent[] = [];
  let letters = 0;

  /** A good event on `partition`, recorded as acknowledged. */
  const good = (partition: number, i: number): RawMessage => {
    const ts = Math.floor(Date.now() / DAY_MS) * DAY_MS - DAY_MS + i * 1_000;
    const e = activity({ user_id: `poison-u${i % 300}`, activity_timestamp: ts });
    acked.push({ eventId: e.event_id as string, actor: e.user_id as string, timestampMs: ts });
    return { ...encoded('user_activity', e), partition };
  };

  beforeAll(async () => {
    setup = await consumerSetup('consumer_poison', PARTITIONS);
    consumer = await setup.start({ BATCH_MAX_ROWS: '500' });
  });

  afterAll(async () => {
    await setup?.close();
  });

  const settle = async (what: string): Promise<void> => {
    await waitFor(
      what,
      () => distinctEvents(setup.db.client),
      (n) => n >= acked.length,
    );
    await waitFor(
      'lag 0',
      () => groupLag(setup.admin, setup.groupId, setup.topic),
      (n) => n === 0,
    );
  };

  it('dead-letters a poison message in every partition and writes everything else', async () => {
    const writer = codec.writerId('user_activity');
    const messages: RawMessage[] = [];
    for (let p = 0; p < PARTITIONS; p++) {
      for (let i = 0; i < 50; i++) messages.push(good(p, p * 1_000 + i));
      messages.push({
        key: 'x',
        value: Buffer.from('not avro at all \u0000\u00ff'),
        headers: { [SCHEMA_HEADER]: writer },
        partition: p,
      });
      for (let i = 50; i < 100; i++) messages.push(good(p, p * 1_000 + i));
      const valid = encoded('user_activity', activity({ user_id: 'headerless' }));
      messages.push({ key: valid.key, value: valid.value, headers: {}, partition: p });
      for (let i = 100; i < 150; i++) messages.push(good(p, p * 1_000 + i));
    }
    await produce(setup.topics.kafka, setup.topic, messages);
    await settle('every good event');
    letters = 2 * PARTITIONS;
    const dlq = await readDeadLetters(setup.topics.kafka, setup.dlqTopic, letters);
    const report = await checkAckedCounted({
      client: setup.db.client,
      database: setup.db.name,
      clickhouseUrl: setup.at.clickhouseUrl,
      acked,
    });
    const byReason = Object.fromEntries(
      [...new Set(dlq.map((l) => l.reason))].map((r) => [r, dlq.filter((l) => l.reason === r).length]),
    );
    process.stderr.write(
      `[consumer-poison] every partition: dead letters ${JSON.stringify(byReason)}; ${report.summary}\n`,
    );

    expect(dlq).toHaveLength(letters);
    expect(byReason).toEqual({ undecodable: PARTITIONS, missing_schema_header: PARTITIONS });
    expect(new Set(dlq.map((l) => l.sourcePartition)).size).toBe(PARTITIONS);
    expectAckedCounted(report);
    expect(await consumer.metric('consumer_fetch_paused')).toBe(0);
  });

  it('dead-letters the one row ClickHouse refuses, writes the rest of its batch, and moves on', async () => {
    const partition = 2;
    const batch: RawMessage[] = [];
    for (let i = 0; i < 200; i++) batch.push(good(partition, 10_000 + i));
    // Valid by the contract, refused by ClickHouse for its content (a view parses its user_id as a
    // number, see refuseRows): this one row of the insert.
    await refuseRows(setup.db.client, 'refused');
    const bad = activity({ user_id: 'refused' });
    batch.splice(100, 0, { ...encoded('user_activity', bad), partition });
    await produce(setup.topics.kafka, setup.topic, batch);
    await settle('the rest of the batch');
    // Then something after it on the same partition: the partition was not left stuck.
    await produce(setup.topics.kafka, setup.topic, [good(partition, 20_000)]);
    await settle('the event after it');
    const dlq = await readDeadLetters(setup.topics.kafka, setup.dlqTopic, letters + 1);
    const eventIdOf = (value: Buffer | null): unknown => {
      try {
        return value && codec.decode(codec.writerId('user_activity'), value).value.event_id;
      } catch {
        return undefined; // the undecodable letters of the first scenario
      }
    };
    const refused = dlq.filter((l) => eventIdOf(l.value) === bad.event_id);
    const report = await checkAckedCounted({
      client: setup.db.client,
      database: setup.db.name,
      clickhouseUrl: setup.at.clickhouseUrl,
      acked,
    });
    process.stderr.write(
      `[consumer-poison] refused row: ${JSON.stringify(refused.map((l) => ({ reason: l.reason, code: l.code, partition: l.sourcePartition, error: l.error.slice(0, 120) })))}; ${report.summary}\n`,
    );

    expect(refused).toHaveLength(1);
    expect(refused[0]?.sourcePartition).toBe(partition);
    expect(refused[0]?.reason).not.toBe('');
    expectAckedCounted(report);
    expect(consumer.child.exitCode).toBeNull();
  });
});
