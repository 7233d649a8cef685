/**
 * Cache-miss look-ups in ClickHouse for the identity and profile context (profiles.ts). One query
 * per kind per batch. ClickHouse 18.16 has no query parameters, so ids are sent as quoted literals
 * (quoteString escapes every byte that could end the literal).
 */
import type { ClickHouseClient } from '../lib/clickhouse.ts';
import { quoteString } from '../lib/sql.ts';
import type { Profile, ProfileLookup } from './profiles.ts';

interface ProfileRow {
  user_id: string;
  registration_date: string | null;
  birth_date: string | null;
  gender: string | null;
  segment_name: string | null;
  segment_description: string | null;
  segment_category: string | null;
  account_status: string | null;
  country_code: string | null;
  is_test_account: number;
  user_attributes: string | null;
}

const DAY_MS = 86_400_000;

/** The dim_users columns of a profile whose newest non-null value is the profile's value. */
const NULLABLE_ATTRIBUTES = [
  'birth_date',
  'gender',
  'segment_name',
  'segment_description',
  'segment_category',
  'account_status',
  'country_code',
  'user_attributes',
] as const;

/**
 * The profile of each actor, per attribute its newest non-null value (the data model's profile
 * rule, clickhouse/README.md), not the newest row's: until a merge keeps only the newest row per
 * user, a newer row that lacks an attribute (an event carrying only some, a partial identify
 * written before the consumer merged identifies) must not hide an older value. What merges keep
 * is complete by construction: identify rows carry the merged profile and attribute-less activity
 * rows have version 0 (migration 0009). is_test_account is never NULL: the newest row's flag.
 */
export function profileQuery(actorIds: readonly string[]): string {
  const newest = (c: string) => `argMaxIf(${c}, version, isNotNull(${c}))`;
  return `SELECT user_id, toString(${newest('registration_date')}) AS registration_date,
    ${NULLABLE_ATTRIBUTES.map((c) => `${newest(c)} AS ${c}`).join(', ')},
    argMax(is_test_account, version) AS is_test_account
  FROM dim_users
  WHERE user_key IN (${actorIds.map((a) => `cityHash64(${quoteString(a)})`).join(',')})
  GROUP BY user_id`;
}

export function clickhouseLookup(client: ClickHouseClient): ProfileLookup {
  return {
    identities: async (ids) => {
      // Earliest link wins (the data model's rule): an id never moves to another user.
      const rs = await client.query({
        query: `SELECT anonymous_id, argMin(user_id, linked_at) AS user_id FROM identity_map
                WHERE anonymous_id IN (${ids.map(quoteString).join(',')}) GROUP BY anonymous_id`,
        format: 'JSONEachRow',
      });
      const rows = await rs.json<{ anonymous_id: string; user_id: string }>();
      return new Map(rows.map((r) => [r.anonymous_id, r.user_id]));
    },
    profiles: async (actorIds) => {
      const rs = await client.query({ query: profileQuery(actorIds), format: 'JSONEachRow' });
      const rows = await rs.json<ProfileRow>();
      return new Map(
        rows.map((r): [string, Profile] => [
          r.user_id,
          {
            registration_date:
              r.registration_date === null ? null : Date.parse(`${r.registration_date.replace(' ', 'T')}Z`),
            birth_date: r.birth_date === null ? null : Math.round(Date.parse(r.birth_date) / DAY_MS),
            gender: r.gender,
            segment_name: r.segment_name,
            segment_description: r.segment_description,
            segment_category: r.segment_category,
            account_status: r.account_status,
            is_test_account: Number(r.is_test_account) === 1,
            country_code: r.country_code,
            user_attributes: r.user_attributes,
          },
        ]),
      );
    },
  };
}
