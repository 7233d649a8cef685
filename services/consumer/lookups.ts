/**
 * Cache-miss look-ups in ClickHouse for the identity and profile context (profiles.ts). ClickHouse
 * 18.16 has no query parameters, so ids are sent as quoted literals (quoteString escapes every byte
 * that could end the literal) in an `IN (...)` list, and a query's text is capped by the server's
 * max_query_size (262144 bytes by default; past it: code 62, SYNTAX_ERROR). So each look-up is
 * split into queries whose id list stays under LOOKUP_LIST_MAX_BYTES, sent one after another.
 *
 * Which ids are worth looking up at all comes from the known-keys reads below: every id that may
 * have a profile or a link, read in full at start (and after a rebalance), then only what
 * identify_log (migration 0010) says was identified or linked since.
 */
import type { ClickHouseClient } from '../lib/clickhouse.ts';
import { quoteString } from '../lib/sql.ts';
import { unescapeTabSeparated } from '../lib/tabseparated.ts';
import { DAY_MS } from '../lib/time.ts';
import {
  ALL_ATTRIBUTES,
  type KeySink,
  PROFILE_FIELDS,
  type Profile,
  type ProfileLookup,
  type WrittenProbe,
} from './profiles.ts';

interface ProfileRow {
  user_id: string;
  /** Seconds since the epoch. */
  registration_date: number | null;
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

/**
 * Bytes of one query's `IN (...)` list. Half of the default max_query_size, so the rest of the
 * query (about 1 KB) and a server configured lower by a factor of up to two still fit; larger
 * chunks would save little: a 10k-user batch is still only three round trips.
 */
export const LOOKUP_LIST_MAX_BYTES = 131_072;

/**
 * Splits `items` (in order) into chunks whose SQL list `items.map(literal).join(',')` is at most
 * `maxBytes` UTF-8 bytes. An item whose literal alone is longer makes a chunk of its own: the server
 * decides whether it fits, and its refusal is a look-up error like any other.
 */
export function chunkByBytes<T>(items: readonly T[], literal: (item: T) => string, maxBytes: number): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    // +1: the comma before every element but the first.
    const size = Buffer.byteLength(literal(item)) + (current.length > 0 ? 1 : 0);
    if (current.length > 0 && bytes + size > maxBytes) {
      chunks.push(current);
      current = [];
      bytes = size - 1;
    } else {
      bytes += size;
    }
    current.push(item);
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

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
  // The keys come from a subquery over one array literal, not as `IN (cityHash64('a'), ...)`:
  // 18.16 analyses each of those thousands of constant expressions on its own, several times the
  // cost of the rest of the look-up, and `user_key IN (subquery)` still uses the primary key.
  // registration_date as seconds, not text: 18.16 prints DateTime 0 (1970-01-01 00:00:00, a valid
  // registration date) as '0000-00-00 00:00:00', which no date parser reads (pipeline fuzz, seed 4242).
  return `SELECT user_id, toUInt32(${newest('registration_date')}) AS registration_date,
    ${NULLABLE_ATTRIBUTES.map((c) => `${newest(c)} AS ${c}`).join(', ')},
    argMax(is_test_account, version) AS is_test_account
  FROM dim_users
  WHERE user_key IN (SELECT cityHash64(arrayJoin([${actorIds.map(quoteString).join(',')}])))
  GROUP BY user_id`;
}

/**
 * profileQuery per chunk of ids. Every row of a user has the same user_key, so all of a user's rows
 * are read by the query of its chunk and the per-user aggregates stay whole.
 */
export function profileQueries(actorIds: readonly string[], listMaxBytes = LOOKUP_LIST_MAX_BYTES): string[] {
  return chunkByBytes(actorIds, quoteString, listMaxBytes).map(profileQuery);
}

/** Earliest link wins (the data model's rule): an id never moves to another user. */
export function identityQueries(ids: readonly string[], listMaxBytes = LOOKUP_LIST_MAX_BYTES): string[] {
  return chunkByBytes(ids, quoteString, listMaxBytes).map(
    (chunk) => `SELECT anonymous_id, argMin(user_id, linked_at) AS user_id FROM identity_map
                WHERE anonymous_id IN (${chunk.map(quoteString).join(',')}) GROUP BY anonymous_id`,
  );
}

/**
 * The actor each event was first written under (argMin over ingested_at: data from before the
 * consumer kept actors on re-delivery may hold two), for the events among `probes` in the facts.
 * The days bound the read to a few partitions' granules by the primary key's first column.
 */
export function writtenActorsQueries(
  probes: readonly WrittenProbe[],
  listMaxBytes = LOOKUP_LIST_MAX_BYTES,
): string[] {
  return chunkByBytes(probes, (p) => quoteString(p.eventId), listMaxBytes).map((chunk) => {
    const days = [...new Set(chunk.map((p) => new Date(p.activityTimestamp).toISOString().slice(0, 10)))];
    return `SELECT event_id, argMin(actor_id, ingested_at) AS actor_id FROM fact_user_activity
      WHERE date_key IN (${days.map((d) => d.replaceAll('-', '')).join(',')})
        AND activity_id IN (SELECT cityHash64(arrayJoin([${chunk.map((p) => quoteString(p.eventId)).join(',')}])))
      GROUP BY event_id`;
  });
}

/** The rows of every query, one query at a time (a batch's look-up is a few queries at most). */
async function queryAll<R>(client: ClickHouseClient, queries: readonly string[]): Promise<R[]> {
  const out: R[] = [];
  for (const query of queries) {
    const rs = await client.query({ query, format: 'JSONEachRow' });
    out.push(...(await rs.json<R>()));
  }
  return out;
}

/**
 * Every id that may have a profile (a dim_users row with attributes: migration 0009 gives the rows
 * without any version 0), with the attributes its rows hold (bit i: PROFILE_FIELDS[i] not NULL;
 * is_test_account: set), or a link (identity_map), for the consumer's in-memory sets.
 */
export const KNOWN_PROFILES_QUERY = `SELECT user_id, toUInt16(groupBitOr(${PROFILE_FIELDS.map(
  (f, i) =>
    `bitShiftLeft(toUInt16(${f === 'is_test_account' ? 'is_test_account = 1' : `isNotNull(${f})`}), ${i})`,
).join(' + ')})) AS bits FROM dim_users WHERE version > 0 GROUP BY user_id`;
export const KNOWN_LINKS_QUERY = 'SELECT DISTINCT anonymous_id FROM identity_map';

/** Identifies and aliases inserted at or after `fromSec` (server time, migration 0010). */
export function identifiedSinceQuery(fromSec: number): string {
  return `SELECT kind, user_id, linked_id FROM identify_log WHERE written_at >= toDateTime(${Math.floor(fromSec)})`;
}

/** Streams `query`'s TabSeparated rows to `row` without holding them all (1M ids at start). */
async function eachRow(
  client: ClickHouseClient,
  query: string,
  row: (fields: string[]) => void,
): Promise<void> {
  const rs = await client.query({ query, format: 'TabSeparated' });
  for await (const rows of rs.stream()) {
    for (const r of rows) row(r.text.split('\t').map(unescapeTabSeparated));
  }
}

async function serverSeconds(client: ClickHouseClient): Promise<number> {
  let now = 0;
  await eachRow(client, 'SELECT toUInt32(now())', ([s]) => {
    now = Number(s);
  });
  return now;
}

export interface LookupOptions {
  /**
   * How long after identify_log's `now()` an insert may still become visible: the client's
   * request timeout (a slower insert is retried, which writes its rows again with a later time).
   * Each refresh re-reads this much, so a slow insert of another member is never skipped.
   */
  readonly insertVisibleWithinMs: number;
}

export function clickhouseLookup(client: ClickHouseClient, o: LookupOptions): ProfileLookup {
  const overlapSec = Math.ceil(o.insertVisibleWithinMs / 1000) + 1;
  return {
    knownAll: async (sink: KeySink) => {
      // Read before the sets: what is inserted while they are read is in the next refresh.
      const from = (await serverSeconds(client)) - overlapSec;
      await eachRow(client, KNOWN_PROFILES_QUERY, ([id, bits]) => {
        if (id !== undefined) sink.profile(id, Number(bits));
      });
      await eachRow(client, KNOWN_LINKS_QUERY, ([id]) => {
        if (id !== undefined) sink.link(id);
      });
      return from;
    },
    knownSince: async (fromSec: number, sink: KeySink) => {
      const from = (await serverSeconds(client)) - overlapSec;
      await eachRow(client, identifiedSinceQuery(fromSec), ([kind, userId, linked]) => {
        if (kind === 'delete') {
          if (userId !== undefined) sink.forget(userId);
          if (linked !== undefined && linked !== '') sink.forget(linked);
          return;
        }
        if (kind === 'identify' && userId !== undefined) sink.profile(userId, ALL_ATTRIBUTES);
        if (linked !== undefined && linked !== '') sink.link(linked);
      });
      return from;
    },
    identities: async (ids) => {
      const rows = await queryAll<{ anonymous_id: string; user_id: string }>(client, identityQueries(ids));
      return new Map(rows.map((r) => [r.anonymous_id, r.user_id]));
    },
    writtenActors: async (probes) => {
      const rows = await queryAll<{ event_id: string; actor_id: string }>(
        client,
        writtenActorsQueries(probes),
      );
      return new Map(rows.map((r) => [r.event_id, r.actor_id]));
    },
    profiles: async (actorIds) => {
      const rows = await queryAll<ProfileRow>(client, profileQueries(actorIds));
      return new Map(
        rows.map((r): [string, Profile] => [
          r.user_id,
          {
            registration_date: r.registration_date === null ? null : Number(r.registration_date) * 1000,
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
