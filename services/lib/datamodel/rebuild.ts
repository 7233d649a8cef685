/**
 * Rebuild: recomputes the rollups for whole months from fact_user_activity (backfills, a changed
 * view, a deleted user). The command: `npm run rollups:rebuild -- --from YYYY-MM-DD --to YYYY-MM-DD`
 * (clickhouse/rebuild.ts); the range is widened to whole months, the rollups' partitions.
 *
 * Per hourly rollup and month: build the month in a staging table from the facts, swap it in with
 * ALTER TABLE ... REPLACE PARTITION (atomic per partition), then re-add the states of facts that
 * were ingested while the rebuild ran (ingested_at >= start), whose live states the swap may have
 * replaced. States are idempotent, so re-adding is harmless: safe while ingestion continues.
 * rollup_user_first_seen has no time partition; its minima are re-inserted from the facts (min is
 * idempotent; removing a user there is an ALTER TABLE ... DELETE WHERE user_key = ...).
 *
 * Refuses months whose facts retention has already dropped: that would wipe kept history.
 */
import type { ClickHouseClient } from '../clickhouse.ts';
import { DATAMODEL_CODES } from '../error-codes.ts';
import { PipelineError } from '../errors.ts';
import type { Logger } from '../logger.ts';

export const HOURLY_ROLLUPS = [
  'rollup_users_hourly_total',
  'rollup_users_hourly_feature',
  'rollup_users_hourly_slice',
];
const FIRST_SEEN = 'rollup_user_first_seen';

/** Months (YYYYMM numbers) covering [from, to]. */
export function monthsBetween(from: string, to: string): number[] {
  const bad = [from, to].filter((d) => !/^\d{4}-\d{2}-\d{2}$/.test(d) || Number.isNaN(Date.parse(d)));
  if (bad.length > 0 || to < from) {
    throw new PipelineError(
      DATAMODEL_CODES.rebuildBadRange,
      `invalid range ${from} .. ${to} (YYYY-MM-DD, from <= to)`,
    );
  }
  const out: number[] = [];
  let y = Number(from.slice(0, 4));
  let m = Number(from.slice(5, 7));
  const end = Number(to.slice(0, 4)) * 100 + Number(to.slice(5, 7));
  while (y * 100 + m <= end) {
    out.push(y * 100 + m);
    m += 1;
    if (m > 12) [y, m] = [y + 1, 1];
  }
  return out;
}

async function rows<T>(client: ClickHouseClient, query: string): Promise<T[]> {
  const rs = await client.query({ query, format: 'JSONEachRow' });
  return rs.json<T>();
}

/**
 * The SELECT that computes a rollup from the facts, derived from the rollup's columns: each key
 * column has the same name in fact_user_activity, `hour` is the fact's hour, the state column is
 * the state of the user key.
 */
async function selectFromFacts(client: ClickHouseClient, table: string, where: string): Promise<string> {
  const cols = await rows<{ name: string; type: string }>(
    client,
    `SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = '${table}'`,
  );
  const keys = cols.filter((c) => !c.type.startsWith('AggregateFunction('));
  const states = cols.filter((c) => c.type.startsWith('AggregateFunction('));
  const select = cols.map((c) => {
    if (c.name === 'hour') return 'toStartOfHour(activity_timestamp) AS hour';
    if (c.type.startsWith('AggregateFunction(uniq,')) return `uniqState(user_key) AS ${c.name}`;
    if (c.type.startsWith('AggregateFunction(min,')) return `minState(activity_timestamp) AS ${c.name}`;
    if (states.includes(c))
      throw new PipelineError(DATAMODEL_CODES.rebuildUnknownState, `${table}.${c.name}: ${c.type}`);
    return c.name;
  });
  return `SELECT ${select.join(', ')} FROM fact_user_activity WHERE ${where} GROUP BY ${keys.map((k) => k.name).join(', ')}`;
}

export interface RebuildOptions {
  readonly client: ClickHouseClient;
  readonly from: string;
  readonly to: string;
  readonly logger?: Logger;
}

export async function rebuildRollups(o: RebuildOptions): Promise<{ months: number[] }> {
  const { client } = o;
  const log = o.logger?.child({ component: 'rebuild' });
  const months = monthsBetween(o.from, o.to);
  const [oldest] = await rows<{ p: number | null }>(
    client,
    `SELECT toUInt32OrZero(min(partition)) AS p FROM system.parts
     WHERE database = currentDatabase() AND table = 'fact_user_activity' AND active`,
  );
  const oldestFacts = Number(oldest?.p ?? 0);
  const gone = months.filter((m) => oldestFacts === 0 || m < oldestFacts);
  if (gone.length > 0) {
    throw new PipelineError(
      DATAMODEL_CODES.rebuildFactsGone,
      `no facts for months ${gone.join(', ')} (oldest kept: ${oldestFacts || 'none'}); rebuilding would erase their rollups`,
    );
  }
  for (const month of months) {
    const [start] = await rows<{ t: string }>(client, 'SELECT toUInt32(now()) - 1 AS t');
    const inMonth = `toYYYYMM(activity_timestamp) = ${month}`;
    for (const table of HOURLY_ROLLUPS) {
      const staging = `${table}_rebuild`;
      await client.command({ query: `DROP TABLE IF EXISTS ${staging}` });
      await client.command({ query: `CREATE TABLE ${staging} AS ${table}` });
      await client.command({
        query: `INSERT INTO ${staging} ${await selectFromFacts(client, table, inMonth)}`,
      });
      await client.command({ query: `ALTER TABLE ${table} REPLACE PARTITION ${month} FROM ${staging}` });
      await client.command({
        query: `INSERT INTO ${table} ${await selectFromFacts(client, table, `${inMonth} AND ingested_at >= toDateTime(${Number(start?.t)}, 'UTC')`)}`,
      });
      await client.command({ query: `DROP TABLE ${staging}` });
    }
    await client.command({
      query: `INSERT INTO ${FIRST_SEEN} ${await selectFromFacts(client, FIRST_SEEN, inMonth)}`,
    });
    log?.info({ month }, 'rollups rebuilt');
  }
  return { months };
}
