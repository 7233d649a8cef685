/**
 * The check every fault scenario ends with (issue 10, "acknowledged means counted"): every event
 * the pipeline acknowledged (a 2xx from the collector, or acks=all from Kafka for records a test
 * produced itself) is in fact_user_activity exactly once, nothing else is, and the DAU/WAU/MAU the
 * query API serves equal the exact truth computed here from the acknowledged events alone.
 *
 * "Exactly once" is read with FINAL: delivery is at-least-once and a re-delivered event is a second
 * row until ReplacingMergeTree merges it away (clickhouse/migrations/0002_facts.sql); FINAL is what
 * the merges converge to. The raw row count is reported beside it, so a run shows how many
 * re-deliveries the fault caused.
 */
import { expect } from 'vitest';
import { type ActivityRecord, toIngestActivityRow } from '../../services/consumer/ingest-row.ts';
import type { ClickHouseClient } from '../../services/lib/clickhouse.ts';
import { activity } from '../fixtures/records.ts';
import { localDay, truth } from '../integration/datamodel-dataset.ts';
import { startQueryApi } from '../integration/query-harness.ts';
import { scalar } from './consumer-process.ts';

/** An acknowledged event: its id, who it counts for, and the instant it must be counted at. */
export interface AckedEvent {
  readonly eventId: string;
  readonly actor: string;
  /** The time the pipeline should count it at (after any clock-skew correction), ms. */
  readonly timestampMs: number;
}

type Measures = { dau: number; wau: number; mau: number };

export interface InvariantReport {
  readonly acked: number;
  /** Rows of fact_user_activity before merges (re-deliveries included). */
  readonly rawRows: number;
  /** Distinct event ids in fact_user_activity. */
  readonly distinct: number;
  /** Acknowledged, not in the table. */
  readonly missing: readonly string[];
  /** More than one row after FINAL. */
  readonly duplicated: readonly string[];
  /** In the table, never acknowledged. */
  readonly unexpected: readonly string[];
  /** Per UTC day: the truth, the rollup answer (API default), the exact answer (exact=true). */
  readonly truth: ReadonlyMap<string, Measures>;
  readonly rollup: ReadonlyMap<string, Measures>;
  readonly exact: ReadonlyMap<string, Measures>;
  /** One line for the test output and docs/RELIABILITY.md. */
  readonly summary: string;
}

const MEASURES = ['dau', 'wau', 'mau'] as const;

function measures(row: { readonly dau?: unknown; readonly wau?: unknown; readonly mau?: unknown }): Measures {
  return { dau: Number(row.dau), wau: Number(row.wau), mau: Number(row.mau) };
}

/** Reads the table and the query API; asserts nothing (see expectAckedCounted). */
export async function checkAckedCounted(o: {
  readonly client: ClickHouseClient;
  readonly database: string;
  readonly clickhouseUrl: string;
  readonly acked: readonly AckedEvent[];
}): Promise<InvariantReport> {
  const rs = await o.client.query({
    query: 'SELECT event_id, toString(count()) AS n FROM fact_user_activity FINAL GROUP BY event_id',
    format: 'JSONEachRow',
  });
  const counts = new Map(
    (await rs.json<{ event_id: string; n: string }>()).map((r) => [r.event_id, Number(r.n)]),
  );
  const rawRows = await scalar(o.client, 'SELECT count() FROM fact_user_activity');
  const ackedIds = new Set(o.acked.map((a) => a.eventId));
  const missing = [...ackedIds].filter((id) => !counts.has(id));
  const duplicated = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
  const unexpected = [...counts.keys()].filter((id) => !ackedIds.has(id));

  // The truth through the same function the query tests use, on rows built by the consumer's own
  // row builder from the acknowledged (actor, instant) pairs: no second definition of DAU/WAU/MAU.
  // activity() fills every field of the writer schema, so the record is a whole ActivityRecord.
  const rows = o.acked.map((a) =>
    toIngestActivityRow(
      activity({
        event_id: a.eventId,
        user_id: a.actor,
        activity_timestamp: a.timestampMs,
      }) as unknown as ActivityRecord,
    ),
  );
  const days = o.acked.map((a) => localDay(a.timestampMs, 'UTC')).sort();
  const slice = {
    from: days[0] ?? localDay(Date.now(), 'UTC'),
    to: days[days.length - 1] ?? localDay(Date.now(), 'UTC'),
    tz: 'UTC',
    window: 'rolling' as const,
    filters: {},
    groupBy: [],
    // Every acknowledged event counts; test and bot flags are slices of the truth, not part of it.
    includeTest: true,
    includeBots: true,
  };
  const truthByDay = new Map([...truth(rows, slice).values()].map((t) => [t.day, measures(t)] as const));

  const api = await startQueryApi(o.database, new Date(), o.clickhouseUrl);
  const ask = async (exact: boolean): Promise<Map<string, Measures>> => {
    const q = new URLSearchParams({
      from: slice.from,
      to: slice.to,
      tz: 'UTC',
      window: 'rolling',
      include_test: 'true',
      include_bots: 'true',
    });
    if (exact) q.set('exact', 'true');
    const res = await api.get(`/v1/active-users?${q}`);
    if (res.status !== 200) throw new Error(`query API ${res.status}: ${JSON.stringify(res.body)}`);
    const out = new Map<string, Measures>();
    for (const row of res.body.rows as Record<string, unknown>[]) {
      const m = measures(row);
      if (m.dau + m.wau + m.mau > 0) out.set(String(row.date), m);
    }
    return out;
  };
  let rollup: Map<string, Measures>;
  let exact: Map<string, Measures>;
  try {
    rollup = await ask(false);
    exact = await ask(true);
  } finally {
    await api.close();
  }

  const maxDau = Math.max(0, ...[...truthByDay.values()].map((m) => m.dau));
  const summary =
    `acked ${o.acked.length}, fact rows ${rawRows} (duplicates not merged yet, collapsed by FINAL: ${rawRows - counts.size}), ` +
    `distinct ${counts.size}, missing ${missing.length}, duplicated ${duplicated.length}, ` +
    `unexpected ${unexpected.length}; ${truthByDay.size} day(s) ${slice.from}..${slice.to}, max DAU ${maxDau}, ` +
    `rollup ${sameMeasures(rollup, truthByDay) ? '=' : '!='} truth, exact ${sameMeasures(exact, truthByDay) ? '=' : '!='} truth`;
  return {
    acked: o.acked.length,
    rawRows,
    distinct: counts.size,
    missing,
    duplicated,
    unexpected,
    truth: truthByDay,
    rollup,
    exact,
    summary,
  };
}

function sameMeasures(a: ReadonlyMap<string, Measures>, b: ReadonlyMap<string, Measures>): boolean {
  return (
    a.size === b.size &&
    [...a].every(([d, m]) => {
      const t = b.get(d);
      return t !== undefined && MEASURES.every((k) => m[k] === t[k]);
    })
  );
}

/** The assertions, with the first few offending ids in the failure message. */
export function expectAckedCounted(r: InvariantReport): void {
  expect(r.missing.slice(0, 10), `${r.missing.length} acknowledged events missing`).toEqual([]);
  expect(r.duplicated.slice(0, 10), `${r.duplicated.length} events counted twice`).toEqual([]);
  expect(r.unexpected.slice(0, 10), `${r.unexpected.length} events never acknowledged`).toEqual([]);
  expect(r.distinct).toBe(r.acked);
  expect(Object.fromEntries(r.rollup), 'rollup DAU/WAU/MAU').toEqual(Object.fromEntries(r.truth));
  expect(Object.fromEntries(r.exact), 'exact DAU/WAU/MAU').toEqual(Object.fromEntries(r.truth));
}
