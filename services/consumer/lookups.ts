/**
 * Cache-miss look-ups in ClickHouse for the identity and profile context (profiles.ts). One query
 * per kind per batch. ClickHouse 18.16 has no query parameters, so ids are sent as quoted literals
 * (quoteString escapes every byte that could end the literal).
 */
import type { ClickHouseClient } from '../lib/clickhouse.ts';
import type { Profile, ProfileLookup } from './profiles.ts';

/** A ClickHouse string literal: backslash and quote escaped, so any id is safe inside it. */
export function quoteString(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

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
      // FINAL: the newest version of each user (ReplacingMergeTree(version)), merged or not.
      const rs = await client.query({
        query: `SELECT user_id, toString(registration_date) AS registration_date, birth_date, gender,
                  segment_name, segment_description, segment_category, account_status, is_test_account,
                  country_code, user_attributes
                FROM dim_users FINAL
                WHERE user_key IN (${actorIds.map((a) => `cityHash64(${quoteString(a)})`).join(',')})`,
        format: 'JSONEachRow',
      });
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
