/**
 * Delete a user: the query service's admin route, or `npm run delete-user -- <user_id> [--by <who>]`
 * (clickhouse/delete-user.ts). Removes every row that names the user or an anonymous id linked to
 * it from the facts, their details, dim_users, the identity map, identify_log and first-seen, then rebuilds the
 * hourly rollups of the months the user was active in from the remaining facts (a uniq sketch
 * cannot forget one member), so the user counts in no DAU / WAU / MAU while everyone else's numbers
 * stay as they were. The deletion is recorded in user_deletions with the user's key
 * (cityHash64(user id), what the rollups hash) instead of the id.
 *
 * Mutations (ALTER TABLE ... DELETE) are asynchronous on every ClickHouse version; 18.16 has no
 * mutations_sync, so each is waited for in system.mutations. The details go first: their WHERE
 * reads the facts. Events still in Kafka (retention) or in the dead-letter topic are not touched:
 * a redrive of such a letter would write the user again (docs/SECURITY.md).
 */

import type { ClickHouseClient } from '../lib/clickhouse.ts';
import { rebuildRollups } from '../lib/datamodel/rebuild.ts';
import { QUERY_CODES } from '../lib/error-codes.ts';
import { PipelineError } from '../lib/errors.ts';
import type { Logger } from '../lib/logger.ts';
import { quoteString } from '../lib/sql.ts';

export interface DeletionReport {
  /** cityHash64 of the user id, as a decimal string (UInt64). */
  readonly userKey: string;
  /** Anonymous ids linked to the user whose rows went too. */
  readonly linkedIds: number;
  /** Rows removed per table (counted before the delete). */
  readonly rows: Readonly<Record<string, number>>;
  /** Months (YYYYMM) whose rollups were rebuilt. */
  readonly months: readonly number[];
}

async function rows<T>(client: ClickHouseClient, query: string): Promise<T[]> {
  const rs = await client.query({ query, format: 'JSONEachRow' });
  return rs.json<T>();
}

/** The WHERE of each table's rows for the user: `ids` are the user id and its linked anonymous ids. */
export function deletionWhere(userId: string, linked: readonly string[]): Record<string, string> {
  const user = quoteString(userId);
  const anon = linked.map(quoteString);
  // Actor ids: the user id, and `anon:<id>` for events sent before the link was known.
  const actors = [user, ...linked.map((a) => quoteString(`anon:${a}`))];
  const anonIn = anon.length > 0 ? ` OR anonymous_id IN (${anon.join(', ')})` : '';
  const facts = `user_id = ${user} OR actor_id IN (${actors.join(', ')})${anonIn}`;
  const keys = `user_key IN (${actors.map((a) => `cityHash64(${a})`).join(', ')})`;
  return {
    fact_activity_details: `activity_id IN (SELECT cityHash64(event_id) FROM fact_user_activity WHERE ${facts})`,
    fact_user_activity: facts,
    dim_users: keys,
    rollup_user_first_seen: keys,
    identity_map: `user_id = ${user} OR anonymous_id IN (${[user, ...anon].join(', ')})`,
    identify_log: `user_id = ${user} OR linked_id IN (${[user, ...anon].join(', ')})`,
  };
}

async function waitForMutations(client: ClickHouseClient, table: string, pollMs = 200): Promise<void> {
  for (;;) {
    const [open] = await rows<{ n: string; reason: string }>(
      client,
      `SELECT count() AS n, any(latest_fail_reason) AS reason FROM system.mutations
       WHERE database = currentDatabase() AND table = ${quoteString(table)} AND is_done = 0`,
    ).catch(async () =>
      // 18.16's system.mutations has no latest_fail_reason column.
      rows<{ n: string; reason: string }>(
        client,
        `SELECT count() AS n, '' AS reason FROM system.mutations
         WHERE database = currentDatabase() AND table = ${quoteString(table)} AND is_done = 0`,
      ),
    );
    if (Number(open?.n ?? 0) === 0) return;
    if (open?.reason)
      throw new PipelineError(QUERY_CODES.deleteUserMutationFailed, `${table}: ${open.reason}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

export async function deleteUser(o: {
  readonly client: ClickHouseClient;
  readonly userId: string;
  readonly requestedBy: string;
  readonly logger?: Logger;
}): Promise<DeletionReport> {
  const { client, userId } = o;
  if (userId === '') throw new PipelineError(QUERY_CODES.deleteUserBadId, 'a user id is required');
  const log = o.logger?.child({ component: 'delete-user' });
  const linked = (
    await rows<{ anonymous_id: string }>(
      client,
      `SELECT DISTINCT anonymous_id FROM identity_map WHERE user_id = ${quoteString(userId)}`,
    )
  ).map((r) => r.anonymous_id);
  const where = deletionWhere(userId, linked);
  const counts: Record<string, number> = {};
  for (const [table, cond] of Object.entries(where)) {
    const [c] = await rows<{ n: string }>(client, `SELECT count() AS n FROM ${table} WHERE ${cond}`);
    counts[table] = Number(c?.n ?? 0);
  }
  const [span] = await rows<{ lo: string; hi: string; n: string }>(
    client,
    `SELECT toString(toDate(min(activity_timestamp))) AS lo, toString(toDate(max(activity_timestamp))) AS hi,
       count() AS n FROM fact_user_activity WHERE ${where.fact_user_activity}`,
  );
  // The hours the user was active in: their finished days are computed again once the facts are
  // gone (services/lib/finished-days.ts), like days a late event touched.
  const hours = await rows<{ h: string }>(
    client,
    `SELECT DISTINCT toUInt32(toStartOfHour(activity_timestamp)) AS h FROM fact_user_activity WHERE ${where.fact_user_activity}`,
  );
  // Details read the facts: deleted (and waited for) before the facts are.
  for (const [table, cond] of Object.entries(where)) {
    if ((counts[table] ?? 0) === 0) continue;
    await client.command({ query: `ALTER TABLE ${table} DELETE WHERE ${cond}` });
    await waitForMutations(client, table);
  }
  const months =
    Number(span?.n ?? 0) > 0 && span
      ? (await rebuildRollups({ client, from: span.lo, to: span.hi, ...(log ? { logger: log } : {}) })).months
      : [];
  if (hours.length > 0) {
    // Stamped after every mutation finished, so the refresher's recomputation cannot see the rows.
    await client.command({
      query: `INSERT INTO agg_dirty_hours (hour, marked_at)
        SELECT toDateTime(arrayJoin([${hours.map((h) => Number(h.h)).join(', ')}]), 'UTC'), now()`,
    });
  }
  const [key] = await rows<{ k: string }>(client, `SELECT toString(cityHash64(${quoteString(userId)})) AS k`);
  const report: DeletionReport = { userKey: key?.k ?? '', linkedIds: linked.length, rows: counts, months };
  await client.command({
    query: `INSERT INTO user_deletions (deleted_at, requested_by, user_key, linked_ids, rows, months)
      SELECT now(), ${quoteString(o.requestedBy)}, cityHash64(${quoteString(userId)}), ${linked.length},
        ${quoteString(JSON.stringify(counts))}, ${quoteString(months.join(','))}`,
  });
  // Consumers cache profiles and links in memory: a `delete` row in identify_log makes each drop
  // what it holds for these ids at its next refresh (CONTEXT_REFRESH_INTERVAL_MS), so a later event
  // of the same id is not filled from the deleted profile. The row names the ids until retention
  // drops its month, the only place they remain.
  await client.command({
    query: `INSERT INTO identify_log (written_at, kind, user_id, linked_id)
      SELECT now(), 'delete', ${quoteString(userId)}, arrayJoin(${`[${['', ...linked].map(quoteString).join(', ')}]`})`,
  });
  log?.info({ userKey: report.userKey, rows: counts, months }, 'user deleted');
  return report;
}
