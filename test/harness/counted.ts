/**
 * "The query API counts what the SDK delivered": for tests whose collector publishes to a topic a
 * real consumer reads (consumerSetup's topic), waits until every activity seen on the topic is a
 * row of fact_user_activity, exactly once, then checks that /v1/active-users counts, per feature, every actor the
 * facts hold for the day (bots included: headless Chromium's user agent is one). Browser SDK tests
 * use it after checking the mapping on the topic.
 */
import { expect } from 'vitest';
import { localDay } from '../../services/lib/finished-days.ts';
import { quoteString } from '../../services/lib/sql.ts';
import { groupLag } from '../fixtures/kafka.ts';
import {
  type Decoded,
  readTopic,
  startCollector,
  type TestCollector,
  type TopicReader,
} from '../integration/collector-harness.ts';
import { startQueryApi } from '../integration/query-harness.ts';
import { type ConsumerSetup, consumerSetup, waitFor } from './consumer-process.ts';
import { kafkaBrokers } from './services.ts';

/** A test collector whose topic a real consumer writes into a fresh database, and a reader of it. */
export interface CountedCollector {
  readonly setup: ConsumerSetup;
  readonly collector: TestCollector;
  readonly reader: TopicReader;
  readonly close: () => Promise<void>;
}

export async function startCountedCollector(
  name: string,
  env: Record<string, string> = {},
  options: Omit<NonNullable<Parameters<typeof startCollector>[2]>, 'topic'> = {},
): Promise<CountedCollector> {
  const setup = await consumerSetup(name, 3);
  const collector = await startCollector(kafkaBrokers(), env, { geo: false, ...options, topic: setup.topic });
  const reader = await readTopic(collector.kafka, collector.topic);
  await setup.start();
  return {
    setup,
    collector,
    reader,
    close: async () => {
      await reader.stop();
      await collector.close();
      await setup.close();
    },
  };
}

export async function expectCountedByQueryApi(
  setup: ConsumerSetup,
  messages: readonly Decoded[],
): Promise<void> {
  const ids = [
    ...new Set(
      messages.filter((m) => m.schema.startsWith('user_activity')).map((m) => String(m.value.event_id)),
    ),
  ];
  expect(ids.length).toBeGreaterThan(0);
  const client = setup.db.client;
  const rows = async <T>(query: string): Promise<T[]> =>
    (await client.query({ query, format: 'JSONEachRow' })).json<T>();
  await waitFor(
    'every activity on the topic written',
    async () =>
      Number(
        (
          await rows<{ n: string }>(
            `SELECT uniqExact(event_id) AS n FROM fact_user_activity WHERE event_id IN (${ids.map(quoteString).join(', ')})`,
          )
        )[0]?.n ?? 0,
      ),
    (n) => n === ids.length,
    90_000,
  );
  // Facts are visible while the consumer's insert still runs the other views (the rollups the API
  // reads): wait for its commit, which follows the insert's acknowledgement (seen in CI under load:
  // the API counted 1 of 3 users just after the facts held all 3).
  await waitFor(
    'the consumer committed everything on the topic',
    () => groupLag(setup.admin, setup.groupId, setup.topic),
    (lag) => lag === 0,
    90_000,
  );
  // Exactly once: one row per event id once merges collapse re-deliveries (an SDK resend of a
  // refused request must not add a second).
  const [once] = await rows<{ n: string }>(
    `SELECT count() AS n FROM fact_user_activity FINAL WHERE event_id IN (${ids.map(quoteString).join(', ')})`,
  );
  expect(Number(once?.n)).toBe(ids.length);
  const today = localDay(Date.now(), 'UTC');
  const want = await rows<{ feature: string; dau: number }>(
    `SELECT feature, toUInt32(uniqExact(actor_id)) AS dau FROM fact_user_activity
     WHERE toDate(activity_timestamp) = '${today}' AND is_test_account = 0 GROUP BY feature`,
  );
  expect(want.length).toBeGreaterThan(0);
  const api = await startQueryApi(setup.db.name, new Date());
  try {
    const r = await api.get(`/v1/active-users?from=${today}&to=${today}&group_by=feature&include_bots=true`);
    expect(r.status).toBe(200);
    const got = (r.body.rows as { feature: string; dau: number }[]).map((x) => [x.feature, x.dau]);
    expect(Object.fromEntries(got)).toEqual(Object.fromEntries(want.map((x) => [x.feature, x.dau])));
  } finally {
    await api.close();
  }
}
