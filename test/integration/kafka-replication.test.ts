/**
 * A replication factor the cluster cannot hold is a start-up error that says so (docs/KAFKA.md):
 * on the shared single broker, creating a topic with 3 copies is refused before Kafka is asked, and
 * a collector configured with KAFKA_REPLICATION_FACTOR=3 exits at once naming the setting, instead
 * of retrying or hanging.
 */
import { afterAll, expect, it } from 'vitest';
import { createKafka, ensureTopics } from '../../services/lib/kafka.ts';
import { collectorProcesses } from '../harness/collector-process.ts';
import { kafkaBrokers, uniqueName } from '../harness/services.ts';

const kafka = createKafka({ brokers: kafkaBrokers(), clientId: uniqueName('rf') });
const admin = kafka.admin();
afterAll(async () => {
  await admin.disconnect();
});

it('ensureTopics refuses more copies than live brokers, and creates nothing', async () => {
  await admin.connect();
  const topic = uniqueName('rf-too-high');
  await expect(ensureTopics(admin, [{ topic, partitions: 1, replicationFactor: 3 }])).rejects.toMatchObject({
    code: 'KAFKA_REPLICATION_FACTOR_TOO_HIGH',
    retriable: false,
    message: expect.stringMatching(
      /replication factor 3: the cluster has 1 live broker\(s\); set KAFKA_REPLICATION_FACTOR/,
    ),
  });
  expect(await admin.listTopics()).not.toContain(topic);
});

it('a collector with KAFKA_REPLICATION_FACTOR=3 on one broker exits at start, naming the setting', async () => {
  const collectors = await collectorProcesses({
    kafkaBrokers: kafkaBrokers().join(','),
    topic: uniqueName('rf-collector'),
    partitions: 1,
    extra: { KAFKA_REPLICATION_FACTOR: '3' },
  });
  await expect(collectors.start()).rejects.toThrow(/exited with 1[\s\S]*KAFKA_REPLICATION_FACTOR_TOO_HIGH/);
});
