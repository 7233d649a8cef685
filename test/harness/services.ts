/**
 * Per-file access to the real Kafka and ClickHouse of the integration project. Every file gets its
 * own database and its own topics (random suffix), so files run in parallel, in any order, and
 * re-run cleanly; `cleanup()` drops them.
 */
import { inject } from 'vitest';
import { uniqueName } from '../../deploy/local/private-stack.ts';
import { type ClickHouseClient, createClickHouse } from '../../services/lib/clickhouse.ts';
import { createKafka, ensureTopics, type Kafka } from '../../services/lib/kafka.ts';

export function kafkaBrokers(): string[] {
  return inject('kafkaBrokers').split(',');
}

export function clickhouseUrl(): string {
  return inject('clickhouseUrl');
}

export { uniqueName };

export interface TestDatabase {
  readonly name: string;
  /** Client bound to the test database (default user). */
  readonly client: ClickHouseClient;
  readonly drop: () => Promise<void>;
}

/** `url` defaults to the shared ClickHouse; fault tests pass their private one. */
export async function freshDatabase(prefix: string, url = clickhouseUrl()): Promise<TestDatabase> {
  const name = uniqueName(`t_${prefix}`);
  const admin = createClickHouse({ url });
  await admin.command({ query: `CREATE DATABASE ${name}` });
  await admin.close();
  const client = createClickHouse({ url, database: name });
  return {
    name,
    client,
    drop: async () => {
      await client.close();
      // Dropping what a large run wrote (the 100k-request fuzz) outlasts the usual 30 s timeout
      // on a busy machine; a cleanup timeout would fail a run whose checks all passed.
      const admin = createClickHouse({ url: clickhouseUrl(), requestTimeoutMs: 600_000 });
      await admin.command({ query: `DROP DATABASE IF EXISTS ${name}` });
      await admin.close();
    },
  };
}

export interface TestTopics {
  readonly kafka: Kafka;
  readonly names: readonly string[];
  readonly drop: () => Promise<void>;
}

/**
 * `brokers` defaults to the shared Kafka; fault tests pass their private one (and 3 copies on a
 * private 3-node cluster).
 */
export async function freshTopics(
  prefix: string,
  count = 1,
  partitions = 3,
  brokers: readonly string[] = kafkaBrokers(),
  replicationFactor = 1,
): Promise<TestTopics> {
  const kafka = createKafka({ brokers, clientId: uniqueName(prefix) });
  const base = uniqueName(prefix).replace(/_/g, '-');
  const names = Array.from({ length: count }, (_, i) => `${base}.${i}`);
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(
    admin,
    names.map((topic) => ({ topic, partitions, replicationFactor })),
  );
  await admin.disconnect();
  return {
    kafka,
    names,
    drop: async () => {
      const a = kafka.admin();
      await a.connect();
      await a.deleteTopics({ topics: [...names] }).catch(() => undefined);
      await a.disconnect();
    },
  };
}
