/**
 * ClickHouse stopped for 30+ s while events keep arriving, then started again: the consumer (the
 * same process, never restarted) pauses fetching instead of buffering without bound, retries, and
 * once ClickHouse is back writes every event and brings the group lag to zero. Runs on a private
 * Kafka + ClickHouse so stopping the database disturbs no other test file.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PrivateStack, privateStack } from '../../../deploy/local/private-stack.ts';
import { type ClickHouseClient, createClickHouse } from '../../../services/lib/clickhouse.ts';
import { type Admin, createKafka, ensureTopics, type Kafka } from '../../../services/lib/kafka.ts';
import { groupLag, produce } from '../../fixtures/kafka.ts';
import {
  activityStream,
  type ConsumerProcess,
  consumerEnv,
  distinctEvents,
  migrated,
  startConsumer,
  waitFor,
} from '../../harness/consumer-process.ts';

const DATABASE = 'analytics';
const TOPIC = 'user-activity.v1';
const DLQ = 'user-activity.v1.dlq';
const BATCH_MAX_BYTES = 1_048_576;
const OUTAGE_MS = 32_000;

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

describe('ClickHouse down for 30+ s', () => {
  let stack: PrivateStack;
  let client: ClickHouseClient;
  let kafka: Kafka;
  let admin: Admin;
  let consumer: ConsumerProcess | undefined;

  beforeAll(async () => {
    stack = await privateStack('consumer-ch-down');
    await Promise.all([stack.startKafka(), stack.startClickhouse()]);
    const root = createClickHouse({ url: stack.clickhouseUrl });
    await root.command({ query: `CREATE DATABASE IF NOT EXISTS ${DATABASE}` });
    await root.close();
    client = createClickHouse({ url: stack.clickhouseUrl, database: DATABASE, requestTimeoutMs: 5_000 });
    await migrated(client, DATABASE);
    kafka = createKafka({ brokers: [stack.kafkaBrokers], clientId: 'consumer-ch-down' });
    admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, [
      { topic: TOPIC, partitions: 3 },
      { topic: DLQ, partitions: 1 },
    ]);
  });

  afterAll(async () => {
    consumer?.child.kill('SIGKILL');
    await admin?.disconnect();
    await client?.close();
    await stack?.destroy();
  });

  it('pauses, keeps memory bounded, and catches up by itself with nothing lost', async () => {
    const groupId = 'activity-consumer';
    const c = await startConsumer(
      consumerEnv({
        kafkaBrokers: stack.kafkaBrokers,
        clickhouseUrl: stack.clickhouseUrl,
        database: DATABASE,
        topic: TOPIC,
        dlqTopic: DLQ,
        groupId,
        extra: {
          BATCH_MAX_ROWS: '2000',
          BATCH_MAX_BYTES: String(BATCH_MAX_BYTES),
          FETCH_MAX_BYTES: String(BATCH_MAX_BYTES),
          CLICKHOUSE_RETRY_MAX_MS: '2000',
          CLICKHOUSE_REQUEST_TIMEOUT_MS: '5000',
        },
      }),
    );
    consumer = c;
    const pid = c.child.pid ?? 0;
    const stream = activityStream(40_000, 1_000, 2, 'down');
    const before = stream.messages.slice(0, 10_000);
    await produce(kafka, TOPIC, before);
    await waitFor(
      'the first 10k written',
      () => distinctEvents(client),
      (n) => n >= before.length,
    );
    const rssBefore = rssBytes(pid);

    await stack.stopClickhouse();
    const outageStart = Date.now();
    // 30k more events arrive during the outage, a chunk every second.
    const during = stream.messages.slice(10_000);
    const producing = (async () => {
      for (let i = 0; i < during.length; i += 1_000) {
        await produce(kafka, TOPIC, during.slice(i, i + 1_000));
        await sleep(1_000);
      }
    })();
    let maxBuffered = 0;
    let maxRss = 0;
    let sawPaused = false;
    while (Date.now() - outageStart < OUTAGE_MS) {
      maxBuffered = Math.max(maxBuffered, await c.metric('consumer_buffered_bytes'));
      maxRss = Math.max(maxRss, rssBytes(pid));
      sawPaused ||= (await c.metric('consumer_fetch_paused')) === 1;
      await sleep(500);
    }
    await producing;
    const sinceInsert = await c.metric('consumer_clickhouse_seconds_since_last_insert');
    // Failed attempts against the down ClickHouse: inserts, or the batch's look-up that runs before
    // its insert (which one fails first depends on where the outage catches the batch). A counter
    // with no series yet reads NaN.
    const failures = async (name: string) => (await c.metric(name)) || 0;
    const errors =
      (await failures('consumer_clickhouse_insert_errors_total')) +
      (await failures('consumer_profile_lookup_failures_total'));
    const notReady = (await fetch(`http://127.0.0.1:${await c.port()}/readyz`)).status;

    await stack.startClickhouse();
    const recoveredAt = Date.now();
    const distinct = await waitFor(
      'every event',
      () => distinctEvents(client),
      (n) => n >= 40_000,
      120_000,
    );
    const catchUpSeconds = (Date.now() - recoveredAt) / 1000;
    await waitFor(
      'group lag 0',
      () => groupLag(admin, groupId, TOPIC),
      (n) => n === 0,
    );
    await waitFor(
      'lag metric 0',
      () => c.metric('consumer_kafka_lag_messages'),
      (n) => n === 0,
    );
    process.stderr.write(
      `[consumer-ch-down] outage ${(OUTAGE_MS / 1000).toFixed(0)} s: max buffered ${maxBuffered} B ` +
        `(cap ${BATCH_MAX_BYTES} B per batch), RSS ${(rssBefore / 2 ** 20).toFixed(0)} -> max ` +
        `${(maxRss / 2 ** 20).toFixed(0)} MiB, failed attempts (inserts + look-ups) ${errors}, seconds since last insert ${sinceInsert}, ` +
        `readyz during outage ${notReady}; caught up ${distinct} events ${catchUpSeconds.toFixed(1)} s after restart\n`,
    );

    expect(distinct).toBe(40_000);
    expect(c.child.exitCode).toBeNull();
    expect(sawPaused).toBe(true);
    expect(notReady).toBe(503);
    expect(errors).toBeGreaterThan(0);
    expect(sinceInsert).toBeGreaterThan(20);
    // Everything buffered is from the fetch being held (FETCH_MAX_BYTES = BATCH_MAX_BYTES here) and
    // the one before it at most.
    expect(maxBuffered).toBeLessThanOrEqual(2 * BATCH_MAX_BYTES);
    expect(maxRss - rssBefore).toBeLessThan(150 * 2 ** 20);
    expect(await c.metric('consumer_fetch_paused')).toBe(0);

    c.child.kill('SIGTERM');
    expect(await c.exited).toBe(0);
  });
});
