/**
 * The whole pipeline for one test: the real collector (buildApp, real producer) on a fresh topic,
 * the real consumer process reading it into a fresh migrated database, and the read-backs the
 * "acknowledged means counted" invariant needs: which event ids are in fact_user_activity (and
 * how often), which ids reached the dead-letter topic, whether the consumer is paused or lagging.
 * Used by the pipeline fuzz and its regression tests (test/integration/pipeline-*.test.ts).
 */
import { randomUUID } from 'node:crypto';
import { SCHEMA_HEADER } from '../../services/lib/avro.ts';
import type { ClickHouseClient } from '../../services/lib/clickhouse.ts';
import type { Kafka } from '../../services/lib/kafka.ts';
import { quoteString } from '../../services/lib/sql.ts';
import { groupLag } from '../fixtures/kafka.ts';
import { codec } from '../fixtures/records.ts';
import { post, startCollector, type TestCollector } from '../integration/collector-harness.ts';
import { type ConsumerProcess, type ConsumerSetup, consumerSetup, waitFor } from './consumer-process.ts';
import { kafkaBrokers, uniqueName } from './services.ts';

export interface Pipeline {
  readonly setup: ConsumerSetup;
  readonly collector: TestCollector;
  readonly consumer: ConsumerProcess;
  readonly close: () => Promise<void>;
}

/**
 * `name` prefixes the database and topics. The collector gets a rate limit no test reaches (the
 * fuzz measures the pipeline, not the limiter) and no geo database (seconds to open, and the city one is 134 MB of files read into memory).
 */
export async function startPipeline(
  name: string,
  o: { consumerEnv?: Record<string, string>; collectorEnv?: Record<string, string> } = {},
): Promise<Pipeline> {
  // 3 partitions: what startCollector's producer partitions for (its KAFKA_TOPIC_PARTITIONS).
  const setup = await consumerSetup(name, 3);
  const collector = await startCollector(
    kafkaBrokers(),
    { RATE_LIMIT_MAX: '1000000', RATE_LIMIT_PER_ADDRESS_MAX: '1000000', ...o.collectorEnv },
    { geo: false, topic: setup.topic },
  );
  const consumer = await setup.start(o.consumerEnv);
  return {
    setup,
    collector,
    consumer,
    close: async () => {
      await collector.close();
      await setup.close();
    },
  };
}

/** Rows per event id in fact_user_activity after collapsing re-deliveries (FINAL); absent ids are missing. */
export async function factRows(
  client: ClickHouseClient,
  eventIds: readonly string[],
): Promise<Map<string, number>> {
  if (eventIds.length === 0) return new Map();
  const rs = await client.query({
    query: `SELECT event_id, toString(count()) AS n FROM fact_user_activity FINAL
            WHERE event_id IN (${eventIds.map(quoteString).join(',')}) GROUP BY event_id`,
    format: 'JSONEachRow',
  });
  return new Map((await rs.json<{ event_id: string; n: string }>()).map((r) => [r.event_id, Number(r.n)]));
}

/**
 * For activities sent without an event id: per marker (a property the sender set), the rows and
 * the distinct event ids the collector generated for it. One event must be one id and one row.
 */
export async function factRowsByMarker(
  client: ClickHouseClient,
  property: string,
  markers: readonly string[],
): Promise<Map<string, { rows: number; ids: number }>> {
  if (markers.length === 0) return new Map();
  const rs = await client.query({
    query: `SELECT visitParamExtractString(activity_metadata, ${quoteString(property)}) AS marker,
              toString(count()) AS rows, toString(uniqExact(event_id)) AS ids
            FROM fact_user_activity FINAL
            WHERE marker IN (${markers.map(quoteString).join(',')}) GROUP BY marker`,
    format: 'JSONEachRow',
  });
  return new Map(
    (await rs.json<{ marker: string; rows: string; ids: string }>()).map((r) => [
      r.marker,
      { rows: Number(r.rows), ids: Number(r.ids) },
    ]),
  );
}

/** Which of `userIds` have a dim_users row (an identify's profile landed). */
export async function profilesOf(client: ClickHouseClient, userIds: readonly string[]): Promise<Set<string>> {
  if (userIds.length === 0) return new Set();
  const rs = await client.query({
    query: `SELECT DISTINCT user_id FROM dim_users WHERE user_id IN (${userIds.map(quoteString).join(',')})`,
    format: 'JSONEachRow',
  });
  return new Set((await rs.json<{ user_id: string }>()).map((r) => r.user_id));
}

/** Which `anonymous_id -> user_id` links (identify anonymous_id, alias previous_id) are in identity_map. */
export async function linksOf(
  client: ClickHouseClient,
  links: ReadonlyArray<readonly [string, string]>,
): Promise<Set<string>> {
  if (links.length === 0) return new Set();
  const rs = await client.query({
    query: `SELECT DISTINCT anonymous_id, user_id FROM identity_map
            WHERE (anonymous_id, user_id) IN (${links.map(([a, u]) => `(${quoteString(a)}, ${quoteString(u)})`).join(',')})`,
    format: 'JSONEachRow',
  });
  return new Set(
    (await rs.json<{ anonymous_id: string; user_id: string }>()).map((r) =>
      linkKey(r.anonymous_id, r.user_id),
    ),
  );
}

export const linkKey = (anonymousId: string, userId: string): string => `${anonymousId}\u0000${userId}`;

export interface DeadLettered {
  readonly eventId: string | undefined;
  /** The decoded Avro record (undefined when it does not decode), to match items sent without an id. */
  readonly record: Record<string, unknown> | undefined;
  readonly reason: string;
  readonly code: string;
  readonly error: string;
}

/** Every message in the dead-letter topic as of now, with the event id its Avro value carries. */
export async function deadLetters(kafka: Kafka, dlqTopic: string): Promise<DeadLettered[]> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(dlqTopic);
  await admin.disconnect();
  const remaining = new Map(
    ends.filter((e) => Number(e.high) > Number(e.low)).map((e) => [e.partition, Number(e.high)]),
  );
  if (remaining.size === 0) return [];
  const out: DeadLettered[] = [];
  const consumer = kafka.consumer({ groupId: uniqueName('dlq-reader') });
  await consumer.connect();
  await consumer.subscribe({ topic: dlqTopic, fromBeginning: true });
  const header = (h: Record<string, unknown> | undefined, k: string): string => String(h?.[k] ?? '');
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      let eventId: string | undefined;
      let record: Record<string, unknown> | undefined;
      try {
        record = codec.decode(header(message.headers, SCHEMA_HEADER), message.value as Buffer).value;
        eventId = typeof record.event_id === 'string' ? record.event_id : undefined;
      } catch {
        // an undecodable poison message: no id to report, its reason still is
      }
      out.push({
        eventId,
        record,
        reason: header(message.headers, 'dlq-reason'),
        code: header(message.headers, 'dlq-error-code'),
        error: header(message.headers, 'dlq-error-message'),
      });
      if (Number(message.offset) + 1 >= (remaining.get(partition) ?? 0)) remaining.delete(partition);
    },
  });
  await waitFor(
    'the dead-letter topic read to its end',
    async () => remaining.size,
    (n) => n === 0,
    60_000,
  );
  await consumer.disconnect();
  return out;
}

export interface ConsumerState {
  /** consumer_fetch_paused from its /metrics (1 while inserts keep failing). */
  readonly paused: number;
  /** What the consumer's own lag gauge says (summed over partitions). */
  readonly reportedLag: number;
  /** The truth: high watermark minus the group's committed offset, summed over partitions. */
  readonly lag: number;
}

export async function consumerState(p: Pipeline): Promise<ConsumerState> {
  return {
    paused: await p.consumer.metric('consumer_fetch_paused'),
    reportedLag: await p.consumer.metric('consumer_kafka_lag_messages'),
    lag: await groupLag(p.setup.admin, p.setup.groupId, p.setup.topic),
  };
}

/**
 * Waits until the group has committed every message of the topic and the consumer says so too (its
 * lag gauge is refreshed on a timer, LAG_REFRESH_INTERVAL_MS, so it may trail the truth by that
 * much); returns the last state seen.
 */
export async function waitForNoLag(p: Pipeline, timeoutMs: number): Promise<ConsumerState> {
  let last: ConsumerState | undefined;
  try {
    await waitFor(
      'consumer lag 0',
      async () => {
        last = await consumerState(p);
        return last;
      },
      (s) => s.lag === 0 && s.reportedLag === 0 && s.paused === 0,
      timeoutMs,
    );
  } catch {
    // the caller asserts on the state
  }
  return last ?? (await consumerState(p));
}

/**
 * A plain, valid event sent after everything else: once it is counted, the pipeline is flowing.
 * Resolves with whether it landed within `timeoutMs`.
 */
export async function sendCanary(p: Pipeline, timeoutMs: number): Promise<{ id: string; landed: boolean }> {
  const id = randomUUID();
  const r = await post(`${p.collector.url}/v1/events`, {
    events: [{ event_id: id, user_id: `canary-${id}`, activity: 'canary', feature: 'canary' }],
  });
  if (r.status !== 200) throw new Error(`canary refused: ${r.status} ${JSON.stringify(r.body)}`);
  try {
    await waitFor(
      'the canary',
      () => factRows(p.setup.db.client, [id]),
      (rows) => rows.has(id),
      timeoutMs,
    );
    return { id, landed: true };
  } catch {
    return { id, landed: false };
  }
}

/** The consumer's last log lines at warn level or above (why it is stuck, for failure messages). */
export function consumerTrouble(p: Pipeline, max = 5): string[] {
  return p.consumer.logs
    .filter((l) => /"level":(40|50|60)/.test(l))
    .slice(-max)
    .map((l) => l.slice(0, 600));
}
