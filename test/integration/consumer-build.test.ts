/**
 * buildConsumer with the real boundary (connect: Kafka and ClickHouse) in this process, without
 * spawning main.ts: produced events land in ClickHouse, the group commits past them, a poison
 * message reaches the DLQ topic, and the shutdown steps leave the group and close the clients.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { consumerSpec } from '../../services/consumer/config.ts';
import { buildConsumer, type Consumer, connect } from '../../services/consumer/consumer.ts';
import { readConfig } from '../../services/lib/config.ts';
import { committedTotal, produce } from '../fixtures/kafka.ts';
import { activity, encoded } from '../fixtures/records.ts';
import {
  type ConsumerSetup,
  consumerSetup,
  distinctEvents,
  readDeadLetters,
  waitFor,
} from '../harness/consumer-process.ts';

let s: ConsumerSetup;
let consumer: Consumer;

beforeAll(async () => {
  s = await consumerSetup('consumer_build', 2);
  const config = readConfig(consumerSpec, s.env({ FLUSH_INTERVAL_MS: '100' }));
  const logger = pino({ level: 'silent' });
  consumer = buildConsumer({ config, logger, boundary: connect(config, logger) });
  await consumer.start();
});

afterAll(async () => {
  for (const step of consumer?.stopSteps ?? []) await step.run();
  await s?.close();
});

it('writes what it reads, commits past it, and dead-letters a poison message', async () => {
  const events = Array.from({ length: 20 }, (_, i) =>
    encoded('user_activity', activity({ user_id: `u${i % 4}` })),
  );
  const poison = { ...encoded('user_activity', activity({})), value: Buffer.from([0xff, 0x00]) };
  await produce(s.topics.kafka, s.topic, [...events, poison]);

  await waitFor(
    '20 events in ClickHouse',
    () => distinctEvents(s.db.client),
    (n) => n === 20,
  );
  await waitFor(
    '21 offsets committed',
    () => committedTotal(s.admin, s.groupId, s.topic),
    (n) => n === 21,
  );
  const [letter] = await readDeadLetters(s.topics.kafka, s.dlqTopic, 1);
  expect(letter?.reason).toBe('undecodable');
  expect(consumer.readiness()).toMatchObject({ ok: true });
  expect(consumer.health()).toEqual({ ok: true });
  const text = await consumer.metrics.registry.metrics();
  expect(text).toMatch(/consumer_rows_written_total\{[^}]*table="ingest_user_activity"[^}]*\} 20/);
});
