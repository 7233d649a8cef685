import { describe, expect, it } from 'vitest';
import type { ClickHouseClient } from '../lib/clickhouse.ts';
import { clickhouseLookup } from './lookups.ts';

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
        registration_date: '2024-01-02 00:00:00',
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
    const found = await clickhouseLookup(client).profiles(['u1']);
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
