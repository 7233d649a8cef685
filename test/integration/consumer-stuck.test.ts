/**
 * Regression (issue 10): while a partition was wedged (its writes failing, nothing committed),
 * consumer_kafka_lag_messages read 0 on every partition, because lag was computed only after a
 * commit, so the runbook's alert never fired. Lag is now read from Kafka on a timer, a stalled
 * partition shows in consumer_partition_stalled_seconds and /readyz (503, the partition named) after
 * STUCK_PARTITION_MS, and all of it clears once writes go through again.
 *
 * The wedge is made honestly: the ingest table is renamed away, so ClickHouse refuses every insert
 * (code 60, unknown table: a deployment problem the sink retries forever), then renamed back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INGEST_TABLES } from '../../services/consumer/schema.ts';
import { produce } from '../fixtures/kafka.ts';
import { activity, encoded } from '../fixtures/records.ts';
import { type ConsumerSetup, consumerSetup, distinctEvents, waitFor } from '../harness/consumer-process.ts';

const PARKED = `${INGEST_TABLES.activity}_parked`;

describe('consumer stuck partition', () => {
  let setup: ConsumerSetup;

  beforeAll(async () => {
    setup = await consumerSetup('consumer_stuck', 2);
  });

  afterAll(async () => {
    await setup?.close();
  });

  const events = (n: number, tag: string) =>
    Array.from({ length: n }, (_, i) => encoded('user_activity', activity({ user_id: `${tag}-${i}` })));

  it('shows a stalled partition in the lag and stalled metrics and in /readyz, and clears after recovery', async () => {
    const consumer = await setup.start({
      STUCK_PARTITION_MS: '2000',
      LAG_REFRESH_INTERVAL_MS: '200',
      FLUSH_INTERVAL_MS: '200',
      CLICKHOUSE_RETRY_MAX_MS: '500',
    });
    await produce(setup.topics.kafka, setup.topic, events(20, 'before'));
    await waitFor(
      'first events',
      () => distinctEvents(setup.db.client),
      (n) => n === 20,
    );
    // Rows land before their offsets are committed: lag 0 is the point where nothing is pending.
    await waitFor(
      'lag 0 before',
      () => consumer.metric('consumer_kafka_lag_messages'),
      (n) => n === 0,
      30_000,
    );
    expect(await consumer.metric('consumer_partition_stalled_seconds')).toBe(0);
    expect((await consumer.readyz()).status).toBe(200);

    await setup.db.client.command({ query: `RENAME TABLE ${INGEST_TABLES.activity} TO ${PARKED}` });
    let parked = true;
    try {
      await produce(setup.topics.kafka, setup.topic, events(20, 'during'));
      const stuck = await waitFor(
        'a stuck partition in /readyz',
        () => consumer.readyz(),
        (r) => r.status === 503 && Array.isArray(r.body.stuck) && r.body.stuck.length > 0,
        30_000,
      );
      for (const s of stuck.body.stuck as { partition: number; lag: number; stalledSeconds: number }[]) {
        expect(s.lag).toBeGreaterThan(0);
        expect(s.stalledSeconds).toBeGreaterThan(2);
      }
      // Nothing was committed for these events, and the lag says so (it read 0 before).
      expect(await consumer.metric('consumer_kafka_lag_messages')).toBeGreaterThan(0);
      expect(await consumer.metric('consumer_partition_stalled_seconds')).toBeGreaterThan(2);

      await setup.db.client.command({ query: `RENAME TABLE ${PARKED} TO ${INGEST_TABLES.activity}` });
      parked = false;
    } finally {
      if (parked) {
        await setup.db.client.command({ query: `RENAME TABLE ${PARKED} TO ${INGEST_TABLES.activity}` });
      }
    }
    await waitFor(
      'every event',
      () => distinctEvents(setup.db.client),
      (n) => n === 40,
      60_000,
    );
    await waitFor(
      'ready again',
      async () => (await consumer.readyz()).status,
      (s) => s === 200,
      30_000,
    );
    await waitFor(
      'lag 0',
      () => consumer.metric('consumer_kafka_lag_messages'),
      (n) => n === 0,
      30_000,
    );
    expect(await consumer.metric('consumer_partition_stalled_seconds')).toBe(0);
    expect((await consumer.readyz()).body.stuck).toEqual([]);
    consumer.child.kill('SIGTERM');
    expect(await consumer.exited).toBe(0);
  });
});
