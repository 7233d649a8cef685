/**
 * What every scenario gets from the orchestrator (the private stack's endpoints, the run mode,
 * fresh databases and topics) and what it hands back (rows for the table, targets, profiles).
 */

import { uniqueName } from '../../deploy/local/private-stack.ts';
import { type ClickHouseClient, createClickHouse } from '../../services/lib/clickhouse.ts';
import { migrate } from '../../services/lib/datamodel/migrate.ts';
import { createKafka, ensureTopics, type Kafka } from '../../services/lib/kafka.ts';
import type { ProfileSummary } from './profile.ts';

export interface Ctx {
  readonly quick: boolean;
  readonly kafkaBrokers: string;
  readonly clickhouseUrl: string;
  /** bench/out/<run>/: JSON, profiles. */
  readonly outDir: string;
  readonly kafka: Kafka;
  readonly log: (line: string) => void;
  /** Values one scenario measures for a later one (e.g. the collector's max for end to end). */
  readonly shared: Map<string, number | string>;
}

export interface Row {
  readonly case: string;
  readonly values: Readonly<Record<string, number | string>>;
}

export interface Target {
  readonly name: string;
  readonly target: string;
  readonly measured: string;
  readonly met: boolean;
  /** "by how much", e.g. "0.42 of the 0.50 ratio (16% short)". */
  readonly margin: string;
}

export interface ScenarioResult {
  readonly id: string;
  readonly title: string;
  readonly notes: string[];
  readonly rows: Row[];
  readonly targets: Target[];
  readonly profiles: { readonly what: string; readonly summary: ProfileSummary }[];
  readonly seconds?: number;
  readonly error?: string;
}

export type Scenario = (ctx: Ctx) => Promise<Omit<ScenarioResult, 'seconds' | 'error'>>;

export interface BenchDatabase {
  readonly name: string;
  readonly client: ClickHouseClient;
  readonly close: () => Promise<void>;
}

/** A new database with every migration applied, and a client bound to it. */
export async function migratedDatabase(ctx: Ctx, prefix: string): Promise<BenchDatabase> {
  const name = uniqueName(`bench_${prefix}`);
  const admin = createClickHouse({ url: ctx.clickhouseUrl });
  await admin.command({ query: `CREATE DATABASE ${name}` });
  await admin.close();
  const client = createClickHouse({ url: ctx.clickhouseUrl, database: name, requestTimeoutMs: 600_000 });
  await migrate({ client, database: name });
  return { name, client, close: () => client.close() };
}

export async function freshTopic(ctx: Ctx, prefix: string, partitions: number): Promise<string> {
  const topic = uniqueName(`bench-${prefix}`).replace(/_/g, '-');
  const admin = ctx.kafka.admin();
  await admin.connect();
  await ensureTopics(admin, [{ topic, partitions }]);
  await admin.disconnect();
  return topic;
}

export function benchKafka(brokers: string): Kafka {
  return createKafka({ brokers: brokers.split(','), clientId: 'bench' });
}

/** `ours / limit` as a fraction and whether it reaches `min`. */
export function ratioTarget(name: string, ours: number, limit: number, min: number): Target {
  const r = limit > 0 ? ours / limit : 0;
  return {
    name,
    target: `>= ${min.toFixed(2)} of the limit`,
    measured: r.toFixed(2),
    met: r >= min,
    margin:
      r >= min ? `${((r / min - 1) * 100).toFixed(0)}% above` : `${((1 - r / min) * 100).toFixed(0)}% short`,
  };
}

function unmeasured(name: string, target: string): Target {
  return { name, target, measured: 'n/a', met: false, margin: 'not measured (see notes)' };
}

/** A value that must stay at or below `max` (latency, memory). */
export function maxTarget(name: string, value: number, max: number, unit: string): Target {
  if (!Number.isFinite(value)) return unmeasured(name, `<= ${max} ${unit}`);
  return {
    name,
    target: `<= ${max} ${unit}`,
    measured: `${Number.isFinite(value) ? value.toFixed(value < 10 ? 2 : 0) : 'n/a'} ${unit}`,
    met: value <= max,
    margin:
      value <= max
        ? `${((1 - value / max) * 100).toFixed(0)}% headroom`
        : `${((value / max - 1) * 100).toFixed(0)}% over`,
  };
}

/** A value that must reach at least `min`. */
export function minTarget(name: string, value: number, min: number, unit: string): Target {
  if (!Number.isFinite(value)) return unmeasured(name, `>= ${min} ${unit}`);
  return {
    name,
    target: `>= ${min} ${unit}`,
    measured: `${value.toFixed(value < 10 ? 2 : 0)} ${unit}`,
    met: value >= min,
    margin:
      value >= min
        ? `${((value / min - 1) * 100).toFixed(0)}% above`
        : `${((1 - value / min) * 100).toFixed(0)}% short`,
  };
}
