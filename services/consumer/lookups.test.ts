import { describe, expect, it } from 'vitest';
import type { ClickHouseClient } from '../lib/clickhouse.ts';
import {
  chunkByBytes,
  clickhouseLookup,
  identifiedSinceQuery,
  LOOKUP_LIST_MAX_BYTES,
  profileQueries,
} from './lookups.ts';

/** A client that records the SQL it is sent and answers every query with `rows`. */
function fakeClient(rows: readonly Record<string, unknown>[]) {
  const queries: string[] = [];
  const client = {
    query: async ({ query }: { query: string }) => {
      queries.push(query);
      return { json: async () => rows };
    },
  } as unknown as ClickHouseClient;
  return { client, queries };
}

describe('clickhouseLookup', () => {
  it('reads the whole profile from dim_users, country and segment description/category included', async () => {
    const { client, queries } = fakeClient([
      {
        user_id: 'u1',
        registration_date: Date.UTC(2024, 0, 2) / 1000,
        birth_date: '1990-05-01',
        gender: 'female',
        segment_name: 'pro',
        segment_description: 'paying teams',
        segment_category: 'paid',
        account_status: 'active',
        is_test_account: 1,
        country_code: 'FR',
        user_attributes: null,
      },
    ]);
    const found = await clickhouseLookup(client, { insertVisibleWithinMs: 30_000 }).profiles(['u1']);
    expect(found.get('u1')).toEqual({
      registration_date: Date.UTC(2024, 0, 2),
      birth_date: Date.UTC(1990, 4, 1) / 86_400_000,
      gender: 'female',
      segment_name: 'pro',
      segment_description: 'paying teams',
      segment_category: 'paid',
      account_status: 'active',
      is_test_account: true,
      country_code: 'FR',
      user_attributes: null,
    });
    // Per attribute the newest non-null value, not the newest row (which may lack attributes).
    expect(queries[0]).toMatch(
      /argMaxIf\(segment_name, version, isNotNull\(segment_name\)\) AS segment_name/,
    );
    expect(queries[0]).not.toMatch(/FINAL/);
  });
});

describe('chunkByBytes', () => {
  const id = (s: string) => s;

  it('keeps each comma-joined list within the byte budget, in order, losing nothing', () => {
    const items = Array.from({ length: 1_000 }, (_, i) => `id-${i}`);
    const chunks = chunkByBytes(items, id, 100);
    expect(chunks.flat()).toEqual(items);
    for (const c of chunks) expect(Buffer.byteLength(c.join(','))).toBeLessThanOrEqual(100);
    // Full: adding the next item to a chunk would have crossed the budget.
    for (let i = 0; i + 1 < chunks.length; i++) {
      const next = chunks[i + 1]?.[0] ?? '';
      expect(Buffer.byteLength([...(chunks[i] ?? []), next].join(','))).toBeGreaterThan(100);
    }
  });

  it('fills a chunk up to exactly the budget', () => {
    expect(chunkByBytes(['aa', 'bb', 'cc'], id, 5)).toEqual([['aa', 'bb'], ['cc']]);
    expect(chunkByBytes(['aa', 'bb', 'cc'], id, 8)).toEqual([['aa', 'bb', 'cc']]);
  });

  it('counts UTF-8 bytes, not characters', () => {
    // 'é' is 2 bytes: two of them and a comma are 5 bytes.
    expect(chunkByBytes(['é', 'é', 'é'], id, 4)).toEqual([['é'], ['é'], ['é']]);
  });

  it('puts an item longer than the budget in a chunk of its own', () => {
    expect(chunkByBytes(['a', 'x'.repeat(50), 'b'], id, 10)).toEqual([['a'], ['x'.repeat(50)], ['b']]);
  });

  it('makes no chunk of nothing', () => {
    expect(chunkByBytes([], id, 10)).toEqual([]);
  });
});

describe('look-ups under max_query_size', () => {
  // Regression: 10k new 18-character user ids made one 320 KB query (code 62, retried forever).
  const ids = Array.from({ length: 30_000 }, (_, i) => `sqmx2bvuw9_u${String(i).padStart(6, '0')}`);

  it('splits the profile look-up into queries under 256 KiB that cover every id once', () => {
    const queries = profileQueries(ids);
    expect(queries.length).toBeGreaterThan(1);
    for (const q of queries) expect(Buffer.byteLength(q)).toBeLessThan(LOOKUP_LIST_MAX_BYTES + 2_048);
    const seen = queries.flatMap((q) => [...q.matchAll(/'([^']+)'/g)].map((m) => m[1]));
    expect(seen).toEqual(ids);
  });

  it('sends every chunk of both look-ups and merges the answers', async () => {
    const { client, queries } = fakeClient([]);
    await clickhouseLookup(client, { insertVisibleWithinMs: 30_000 }).identities(ids);
    await clickhouseLookup(client, { insertVisibleWithinMs: 30_000 }).profiles(ids);
    const identity = queries.filter((q) => q.includes('identity_map'));
    const profile = queries.filter((q) => q.includes('dim_users'));
    expect(identity.length).toBeGreaterThan(1);
    expect(profile.length).toBeGreaterThan(1);
    for (const q of queries) expect(Buffer.byteLength(q)).toBeLessThan(262_144);
  });
});

describe('known-id reads', () => {
  it('reads identify_log from a server-time cursor (whole seconds)', () => {
    expect(identifiedSinceQuery(1_700_000_000.7)).toContain('written_at >= toDateTime(1700000000)');
  });
});
