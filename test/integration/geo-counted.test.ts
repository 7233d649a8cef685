/**
 * Acknowledged means counted with the geo lookup on (the invariant tests run their collectors
 * without it, to save its start-up): each IP database the collector can open (GEO_DATABASE, the
 * country default and the city option) enriches events that reach fact_user_activity exactly once
 * with the place the database knows, a garbage request between them changes nothing, and a canary
 * sent after it lands too.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { type CountedCollector, expectCountedByQueryApi, startCountedCollector } from '../harness/counted.ts';
import { post } from './collector-harness.ts';

const open: CountedCollector[] = [];
afterAll(async () => {
  for (const t of open) await t.close();
});

describe.each([
  { database: 'country', region: false },
  { database: 'city', region: true },
])('GEO_DATABASE=$database', ({ database, region }) => {
  it('geo-enriched events land once with their country, after garbage too', async () => {
    const t = await startCountedCollector(
      `geo_${database}`,
      { TRUST_PROXY: 'true', GEO_DATABASE: database },
      { geo: true },
    );
    open.push(t);
    const url = `${t.collector.url}/v1/events`;
    const run = randomUUID().slice(0, 8);
    const sends = [
      { user: `us-${run}`, ip: '8.8.8.8', country: 'US' },
      { user: `de-${run}`, ip: '2a00:1450:4001:80b::200e', country: 'DE' },
    ];
    for (const s of sends) {
      const r = await post(url, { user_id: s.user, activity: 'page_view' }, { 'x-forwarded-for': s.ip });
      expect(r.status).toBe(200);
    }
    expect((await post(url, '{"user_id": "x", "activity":', { 'x-forwarded-for': '8.8.8.8' })).status).toBe(
      400,
    );
    const canary = await post(url, { user_id: `canary-${run}`, activity: 'page_view' });
    expect(canary.status).toBe(200);
    const mine = await t.reader.waitFor(
      (m) => m.filter((x) => String(x.value.user_id).endsWith(run)).length === 3,
    );
    await expectCountedByQueryApi(
      t.setup,
      mine.filter((x) => String(x.value.user_id).endsWith(run)),
    );

    const got = await (
      await t.setup.db.client.query({
        query: `SELECT actor_id, country_code, region_name FROM fact_user_activity FINAL
                ANY LEFT JOIN (SELECT geography_key, country_code, region_name FROM dim_geographies FINAL)
                USING geography_key WHERE actor_id IN ('us-${run}', 'de-${run}') ORDER BY actor_id`,
        format: 'JSONEachRow',
      })
    ).json<{ actor_id: string; country_code: string | null; region_name: string | null }>();
    expect(got.map((r) => [r.actor_id, r.country_code])).toEqual([
      [`de-${run}`, 'DE'],
      [`us-${run}`, 'US'],
    ]);
    // The country files know countries only; the city files add the region.
    for (const r of got) expect(Boolean(r.region_name), r.actor_id).toBe(region);
  });
});
