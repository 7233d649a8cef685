/**
 * Retention: drops monthly partitions of the raw fact tables (and of identify_log) that lie
 * entirely before the retention period (18.16 has no TTL). The rollups keep the full history. The
 * command: `npm run retention -- [--keep-months 3]` (clickhouse/retention.ts). Run it daily (cron /
 * k8s CronJob); it is a no-op when nothing is old enough. On a cluster (`cluster`) the partitions are
 * those of every shard and each drop runs ON CLUSTER on the shard-local tables (cluster-ops.ts).
 */
import type { ClickHouseClient } from '../clickhouse.ts';
import { DATAMODEL_CODES } from '../error-codes.ts';
import { PipelineError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { ClusterTarget } from './cluster.ts';
import { dropPartitionStatement, systemRowsOf } from './cluster-ops.ts';

export const FACT_TABLES = ['fact_user_activity', 'fact_activity_details'];
/** Logs the consumer reads only seconds back (identify_log, migration 0010), dropped alike. */
export const LOG_TABLES = ['identify_log'];
export const DEFAULT_KEEP_MONTHS = 3;

/** Partitions (YYYYMM) strictly before this month hold only facts older than `keepMonths`. */
export function cutoffMonth(now: Date, keepMonths: number): number {
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - keepMonths, now.getUTCDate()));
  return d.getUTCFullYear() * 100 + d.getUTCMonth() + 1;
}

export interface RetentionOptions {
  readonly client: ClickHouseClient;
  readonly keepMonths?: number;
  /** Injected clock (tests); default the current time. */
  readonly now?: Date;
  readonly logger?: Logger;
  /** The cluster the tables live on (clickhouse/CLUSTER.md); absent: one node. */
  readonly cluster?: ClusterTarget;
}

export async function dropOldFactPartitions(o: RetentionOptions): Promise<{ dropped: string[] }> {
  const keep = o.keepMonths ?? DEFAULT_KEEP_MONTHS;
  if (!Number.isInteger(keep) || keep < 1)
    throw new PipelineError(DATAMODEL_CODES.retentionBadMonths, `keep months must be >= 1, got ${keep}`);
  const cutoff = cutoffMonth(o.now ?? new Date(), keep);
  const dropped: string[] = [];
  for (const table of [...FACT_TABLES, ...LOG_TABLES]) {
    const parts = systemRowsOf('parts', table, o.cluster);
    const rs = await o.client.query({
      query: `SELECT DISTINCT partition FROM ${parts.from}
        WHERE ${parts.where} AND active ORDER BY partition`,
      format: 'JSONEachRow',
    });
    for (const { partition } of await rs.json<{ partition: string }>()) {
      if (!/^\d{6}$/.test(partition) || Number(partition) >= cutoff) continue;
      await o.client.command({ query: dropPartitionStatement(table, partition, o.cluster) });
      dropped.push(`${table}:${partition}`);
    }
  }
  if (dropped.some((d) => FACT_TABLES.some((t) => d.startsWith(`${t}:`)))) {
    // The refresher must not recompute finished days from what is left (migration 0012).
    const keptFrom = `${String(cutoff).slice(0, 4)}-${String(cutoff).slice(4)}-01`;
    await o.client.command({
      query: `INSERT INTO fact_retention (kept_from, applied_at) SELECT toDate('${keptFrom}'), now()`,
    });
  }
  o.logger?.child({ component: 'retention' }).info({ cutoff, dropped }, 'fact retention applied');
  return { dropped };
}
