/**
 * End to end through the real collector (buildApp) and the real consumer process: N events posted
 * -> exactly N distinct event_ids in the fact table with the right dimension keys, and DAU / WAU /
 * MAU from the rollups equal to the exact truth of what was sent. Also reports freshness: time
 * from the collector's 2xx to the event being counted (p50/p99), printed, not asserted.
 *
 * "Counted": the rollup views and the fact view are fed by the same ingest insert, so an event
 * present in fact_user_activity at time t was merged into the rollups by t as well.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY_MS } from '../../services/lib/time.ts';
import { groupLag } from '../fixtures/kafka.ts';
import {
  type ConsumerSetup,
  consumerSetup,
  distinctEvents,
  scalar,
  waitFor,
} from '../harness/consumer-process.ts';
import { kafkaBrokers } from '../harness/services.ts';
import { post, startCollector, type TestCollector } from './collector-harness.ts';

const N = 3_000;
const FEATURES = ['search', 'checkout', 'profile', 'reports'];
const DEVICES = ['desktop', 'mobile', 'tablet'];

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

describe('collector -> Kafka -> consumer -> ClickHouse', () => {
  let setup: ConsumerSetup;
  let collector: TestCollector;

  beforeAll(async () => {
    // 3 partitions: what the collector's producer partitions for (its KAFKA_TOPIC_PARTITIONS).
    setup = await consumerSetup('consumer_e2e', 3);
    collector = await startCollector(kafkaBrokers(), {}, { geo: false, topic: setup.topic });
    await setup.start();
  });

  afterAll(async () => {
    await collector?.close();
    await setup?.close();
  });

  it('N posted events become N distinct facts and exact DAU/WAU/MAU; reports freshness', async () => {
    const today = Math.floor(Date.now() / DAY_MS) * DAY_MS;
    const perDay = new Map<string, Set<string>>();
    const all = new Set<string>();
    const sent: { event_id: string; feature: string }[] = [];
    const events = Array.from({ length: N }, (_, i) => {
      const user = `e2e-u${(i * 31) % 400}`;
      const dayStart = today - (i % 3) * DAY_MS;
      // Today's events are in the past minutes; earlier days' spread over the day.
      const ts = i % 3 === 0 ? Date.now() - 60_000 - (i % 600) * 100 : dayStart + ((i * 7_919) % DAY_MS);
      const day = new Date(ts).toISOString().slice(0, 10);
      const set = perDay.get(day) ?? new Set<string>();
      perDay.set(day, set);
      set.add(user);
      all.add(user);
      const e = {
        event_id: randomUUID(),
        user_id: user,
        activity: i % 10 === 0 ? 'purchase' : 'page_view',
        feature: FEATURES[i % FEATURES.length] ?? 'search',
        timestamp: new Date(ts).toISOString(),
        device: { type: DEVICES[i % DEVICES.length] },
      };
      sent.push({ event_id: e.event_id, feature: e.feature });
      return e;
    });
    for (let i = 0; i < events.length; i += 100) {
      const r = await post(`${collector.url}/v1/events`, { events: events.slice(i, i + 100) });
      expect(r.status).toBe(200);
    }

    expect(
      await waitFor(
        'N distinct events',
        () => distinctEvents(setup.db.client),
        (n) => n >= N,
      ),
    ).toBe(N);
    // The facts are visible before the insert finished: it feeds the views one after another (name
    // order, facts first), so the rollups are read only once the insert was acknowledged, which is
    // when the consumer commits.
    await waitFor(
      'lag 0',
      () => groupLag(setup.admin, setup.groupId, setup.topic),
      (n) => n === 0,
    );
    // Exactly the posted ids, and nothing else.
    expect(
      await scalar(
        setup.db.client,
        `SELECT count() FROM (SELECT DISTINCT event_id FROM fact_user_activity) WHERE event_id IN (${sent
          .map((s) => `'${s.event_id}'`)
          .join(',')})`,
      ),
    ).toBe(N);
    // Dimension keys: each fact's keys are the hashes of its natural keys, and the dimension rows exist.
    expect(
      await scalar(
        setup.db.client,
        'SELECT countIf(feature_key != cityHash64(feature)) FROM fact_user_activity',
      ),
    ).toBe(0);
    expect(
      await scalar(
        setup.db.client,
        'SELECT count() FROM (SELECT DISTINCT feature_key FROM fact_user_activity) WHERE feature_key NOT IN (SELECT feature_key FROM dim_features)',
      ),
    ).toBe(0);
    expect(
      await scalar(
        setup.db.client,
        'SELECT count() FROM (SELECT DISTINCT user_key FROM fact_user_activity) WHERE user_key NOT IN (SELECT user_key FROM dim_users)',
      ),
    ).toBe(0);

    // DAU per day, WAU (7 days to today) and MAU (30 days) from the rollups vs the exact truth.
    const rs = await setup.db.client.query({
      query: `SELECT toString(toDate(hour)) AS d, toString(uniqMerge(users)) AS n
              FROM rollup_users_hourly_total GROUP BY d ORDER BY d`,
      format: 'JSONEachRow',
    });
    const dau = Object.fromEntries(
      (await rs.json<{ d: string; n: string }>()).map((r) => [r.d, Number(r.n)]),
    );
    expect(dau).toEqual(Object.fromEntries([...perDay].map(([d, s]) => [d, s.size]).sort()));
    const window = (days: number): Promise<number> =>
      scalar(
        setup.db.client,
        `SELECT uniqMerge(users) FROM rollup_users_hourly_total WHERE hour >= toDateTime(${(today - (days - 1) * DAY_MS) / 1000})`,
      );
    expect(await window(7)).toBe(all.size);
    expect(await window(30)).toBe(all.size);

    // Freshness under a steady trickle: one event every 100 ms for 15 s, each timed from the
    // collector's 2xx to its presence in ClickHouse.
    const pending = new Map<string, number>();
    const delays: number[] = [];
    let producing = true;
    const poller = (async () => {
      while (producing || pending.size > 0) {
        if (pending.size > 0) {
          const ids = [...pending.keys()];
          const q = await setup.db.client.query({
            query: `SELECT DISTINCT event_id FROM fact_user_activity WHERE event_id IN (${ids.map((id) => `'${id}'`).join(',')})`,
            format: 'JSONEachRow',
          });
          const now = Date.now();
          for (const { event_id } of await q.json<{ event_id: string }>()) {
            const at = pending.get(event_id);
            if (at !== undefined) delays.push(now - at);
            pending.delete(event_id);
          }
        }
        await sleep(20);
      }
    })();
    const until = Date.now() + 15_000;
    while (Date.now() < until) {
      const id = randomUUID();
      const r = await post(`${collector.url}/v1/events`, {
        events: [{ event_id: id, user_id: `probe-${id}`, activity: 'page_view', feature: 'search' }],
      });
      expect(r.status).toBe(200);
      pending.set(id, Date.now());
      await sleep(100);
    }
    producing = false;
    await poller;
    delays.sort((a, b) => a - b);
    process.stderr.write(
      `[consumer-e2e] ${N} events: distinct ${N}, DAU ${JSON.stringify(dau)}, WAU/MAU ${all.size}; ` +
        `freshness over ${delays.length} probes (2xx -> counted, poll 20 ms): ` +
        `p50 ${quantile(delays, 0.5)} ms, p99 ${quantile(delays, 0.99)} ms, max ${delays.at(-1)} ms ` +
        `(FLUSH_INTERVAL_MS 1000, FLUSH_IDLE_MS 250)\n`,
    );
  });
});
