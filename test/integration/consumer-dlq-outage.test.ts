/**
 * Regression (issue 10, reproduction 4): a dead-letter send that failed inside a flush stopped every
 * later flush while /healthz stayed ok. Here the dead-letter topic is deleted under a running
 * consumer, so Kafka refuses the send of a poison message: the consumer retries, is unready
 * (/readyz 503, deadLetterFailing) meanwhile and commits nothing past the poison; once the topic is
 * back, the send goes through, the events behind the poison land and the consumer is ready again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCHEMA_HEADER } from '../../services/lib/avro.ts';
import { ensureTopics } from '../../services/lib/kafka.ts';
import { groupLag, produce } from '../fixtures/kafka.ts';
import { activity, encoded } from '../fixtures/records.ts';
import { type ConsumerSetup, consumerSetup, distinctEvents, waitFor } from '../harness/consumer-process.ts';

describe('consumer dead-letter outage', () => {
  let setup: ConsumerSetup;

  beforeAll(async () => {
    setup = await consumerSetup('consumer_dlq_outage', 1);
  });

  afterAll(async () => {
    await setup?.close();
  });

  it('retries a refused dead-letter send, unready meanwhile, and resumes once it goes through', async () => {
    const consumer = await setup.start({ FLUSH_INTERVAL_MS: '200', CLICKHOUSE_RETRY_MAX_MS: '500' });
    await waitFor(
      'ready',
      async () => (await consumer.readyz()).status,
      (s) => s === 200,
    );
    await setup.admin.deleteTopics({ topics: [setup.dlqTopic] });
    await waitFor(
      'DLQ topic gone',
      async () => (await setup.admin.listTopics()).includes(setup.dlqTopic),
      (present) => !present,
      30_000,
    );

    const poison = {
      key: 'u',
      value: Buffer.from([0xff, 0xfe]),
      headers: { [SCHEMA_HEADER]: 'user_activity.v1' },
    };
    const after = Array.from({ length: 10 }, () => encoded('user_activity', activity({ user_id: 'u' })));
    await produce(setup.topics.kafka, setup.topic, [poison, ...after]);

    const unready = await waitFor(
      'unready while the dead-letter send fails',
      () => consumer.readyz(),
      (r) => r.status === 503 && r.body.deadLetterFailing === true,
      60_000,
    );
    expect(unready.body.deadLetterFailing).toBe(true);
    expect(await consumer.metric('consumer_dlq_sends_failing')).toBe(1);
    // Nothing behind the poison is written or committed before it is dead-lettered.
    expect(await distinctEvents(setup.db.client)).toBe(0);
    expect(await groupLag(setup.admin, setup.groupId, setup.topic)).toBe(11);

    await ensureTopics(setup.admin, [{ topic: setup.dlqTopic, partitions: 1 }]);
    await waitFor(
      'events behind the poison',
      () => distinctEvents(setup.db.client),
      (n) => n === 10,
      60_000,
    );
    await waitFor(
      'lag 0',
      () => groupLag(setup.admin, setup.groupId, setup.topic),
      (n) => n === 0,
      30_000,
    );
    await waitFor(
      'ready again',
      async () => (await consumer.readyz()).status,
      (s) => s === 200,
      30_000,
    );
    expect(await consumer.metric('consumer_dlq_messages_total')).toBe(1);
    expect(await consumer.metric('consumer_dlq_sends_failing')).toBe(0);
    consumer.child.kill('SIGTERM');
    expect(await consumer.exited).toBe(0);
  });
});
