/**
 * exact=true on /v1/active-users against the real ClickHouse (18.16): the answer is computed from
 * the fact table (uniqExact of the user key, one row per event_id) and must equal the exact truth
 * computed here from the generated events, and equal the rollup answer on a data set small enough
 * that uniq is exact (clickhouse/README.md: exact up to 10,000 distinct), for slices, group-bys,
 * both window kinds and zones with whole, half and quarter hour offsets.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IngestActivityRow } from '../../services/consumer/ingest-row.ts';
import { migrate } from '../../services/lib/datamodel/migrate.ts';
import { MAX_EXACT_RANGE_DAYS } from '../../services/query/params.ts';
import { freshDatabase, type TestDatabase } from '../harness/services.ts';
import { type Dataset, generate, truth } from './datamodel-dataset.ts';
import { ingest, type QueryApi, type Slice, sliceQuery, startQueryApi } from './query-harness.ts';

const LAST_DAY = Date.UTC(2025, 3, 10);
const MEASURES = ['dau', 'wau', 'mau', 'new_users', 'returning_users'] as const;

let db: TestDatabase;
let api: QueryApi;
let data: Dataset;

beforeAll(async () => {
  db = await freshDatabase('query_exact');
  await migrate({ client: db.client, database: db.name });
  data = generate(9, 300, 75, LAST_DAY);
  await ingest(db.client, data.rows);
  // At-least-once delivery: a re-sent batch is a second fact row per event until merges.
  await ingest(db.client, data.rows.slice(0, 2000));
  api = await startQueryApi(db.name, new Date(LAST_DAY + 12 * 3_600_000));
});

afterAll(async () => {
  await api?.close();
  await db?.drop();
});

type Measures = Record<(typeof MEASURES)[number], number>;

/** The API's rows keyed like truth(): `day \0 JSON of the group values`, measures only. */
async function activeUsers(s: Slice, exact: boolean): Promise<Map<string, Measures>> {
  const res = await api.get(`/v1/active-users?${sliceQuery(s)}${exact ? '&exact=true' : ''}`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  const meta = res.body.meta as Record<string, unknown>;
  expect(meta.exact).toBe(exact);
  if (exact) expect(meta.source).toBe('fact_user_activity');
  const out = new Map<string, Measures>();
  for (const row of res.body.rows as Record<string, string | number>[]) {
    const key = `${row.date}\0${JSON.stringify(s.groupBy.map((g) => row[g]))}`;
    out.set(key, Object.fromEntries(MEASURES.map((m) => [m, row[m]])) as Measures);
  }
  return out;
}

const measuresOf = (m: Map<string, Measures>): Map<string, Measures> =>
  new Map([...m].map(([k, v]) => [k, Object.fromEntries(MEASURES.map((x) => [x, v[x]])) as Measures]));

const SLICES: Slice[] = [
  {
    from: '2025-03-11',
    to: '2025-04-10',
    tz: 'UTC',
    window: 'rolling',
    filters: {},
    groupBy: [],
    includeTest: false,
    includeBots: false,
  },
  {
    from: '2025-03-01',
    to: '2025-03-31',
    tz: 'America/New_York',
    window: 'calendar',
    filters: {},
    groupBy: ['platform'],
    includeTest: true,
    includeBots: false,
  },
  {
    from: '2025-03-20',
    to: '2025-04-05',
    tz: 'Europe/Berlin',
    window: 'rolling',
    filters: { country: ['DE', 'US'] },
    groupBy: ['feature'],
    includeTest: false,
    includeBots: true,
  },
  {
    from: '2025-03-05',
    to: '2025-03-25',
    tz: 'Asia/Kolkata',
    window: 'rolling',
    filters: { segment: ['pro', ''] },
    groupBy: ['device_type', 'country'],
    includeTest: false,
    includeBots: false,
  },
  {
    from: '2025-03-25',
    to: '2025-04-10',
    tz: 'Asia/Kathmandu',
    window: 'calendar',
    filters: {},
    groupBy: ['age_band'],
    includeTest: true,
    includeBots: true,
  },
  {
    from: '2025-03-28',
    to: '2025-04-08',
    tz: 'Australia/Adelaide',
    window: 'rolling',
    filters: { feature: ['search', 'chat'], platform: ['ios'] },
    groupBy: [],
    includeTest: false,
    includeBots: false,
  },
];

describe('exact=true', () => {
  it.each(SLICES.map((s) => [sliceQuery(s), s] as const))(
    'equals exact truth and the rollup answer: %s',
    async (_label, s) => {
      const exact = await activeUsers(s, true);
      expect(exact.size).toBeGreaterThan(0);
      expect(exact).toEqual(measuresOf(truth(data.rows, s)));
      // 300 users: uniq is exact, so the sketches and the scan must agree to the user.
      expect(await activeUsers(s, false)).toEqual(exact);
    },
  );

  it(`refuses more than ${MAX_EXACT_RANGE_DAYS} days with a 400 naming the limit`, async () => {
    const res = await api.get('/v1/active-users?from=2025-03-01&to=2025-04-01&exact=true');
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('QUERY_PARAM_INVALID');
    expect(String(res.body.message)).toContain(`at most ${MAX_EXACT_RANGE_DAYS} days`);
    expect((await api.get('/v1/active-users?from=2025-03-01&to=2025-04-01')).status).toBe(200);
  });
});

// A re-delivered event whose anonymous id had been resolved to a known user by then is a second fact
// row under another user_key, which merges never collapse (user_key is in the sorting key). The
// consumer no longer writes one (it keeps the first actor: consumer-redelivery.test.ts), but rows
// written before that, or by an old owner whose insert outlived a rebalance, can hold both, and
// exact mode still counts one row per event. The sketches cannot drop a user once merged. Its rows
// are dated before the data set and filtered by their own feature, outside every slice above and
// their 30-day look-back, so the tests of this file pass in any order.
describe('an event re-delivered under another user', () => {
  const slice: Slice = {
    from: '2025-01-10',
    to: '2025-01-10',
    tz: 'UTC',
    window: 'rolling',
    filters: { feature: ['rekey-probe'] },
    groupBy: [],
    includeTest: false,
    includeBots: false,
  };
  const key = '2025-01-10\0[]';
  // One user (the anonymous one, as first ingested) that day; `known` was active a week earlier, so
  // it counts in the MAU but is neither new nor returning on the day.
  const once = { dau: 1, wau: 1, mau: 2, new_users: 1, returning_users: 0 };

  beforeAll(async () => {
    const base = data.rows[0] as IngestActivityRow;
    const day = Date.UTC(2025, 0, 10);
    expect(day + 86_400_000).toBeLessThan(Math.min(...data.rows.map((r) => r.activity_timestamp)));
    const probe = (eventId: string, actor: string, ts: number): IngestActivityRow => ({
      ...base,
      event_id: eventId,
      actor_id: actor,
      activity_timestamp: ts,
      feature_name: 'rekey-probe',
      is_test_account: 0,
      is_bot: 0,
    });
    await ingest(db.client, [
      probe('probe-0', 'known', day - 7 * 86_400_000 + 3_600_000),
      probe('probe-1', 'anon:x', day + 3_600_000),
    ]);
    // ingested_at has second resolution: the re-delivery must be ingested later to lose the tie.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await ingest(db.client, [probe('probe-1', 'known', day + 3_600_000)]);
  });

  it('is counted once with exact=true, as first ingested', async () => {
    expect((await activeUsers(slice, true)).get(key)).toEqual(once);
  });
});
