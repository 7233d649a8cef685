/**
 * Every ClickHouse query of the Grafana dashboards (deploy/grafana/dashboards/*.json: panel targets
 * and template variables) runs against the real ClickHouse after the migrations, with Grafana's
 * macros and variables replaced as the ClickHouse plugin does, and returns rows over a range where
 * events were inserted. Grafana itself cannot run here; this keeps its SQL from drifting away
 * from the tables the migrations create.
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IngestActivityRow } from '../../services/consumer/ingest-row.ts';
import { loadMigrations, migrate } from '../../services/lib/datamodel/migrate.ts';
import { DAY_MS } from '../../services/lib/time.ts';
import { runChdb } from '../harness/chdb.ts';
import { testRefresher } from '../harness/refresher.ts';
import { freshDatabase, type TestDatabase } from '../harness/services.ts';
import { generate } from './datamodel-dataset.ts';

const DASHBOARDS = new URL('../../deploy/grafana/dashboards/', import.meta.url).pathname;
const CLICKHOUSE_PLUGIN = 'grafana-clickhouse-datasource';

interface Query {
  readonly where: string;
  readonly sql: string;
}

interface Dashboard {
  readonly panels: { title: string; datasource: { type: string }; targets: { rawSql?: string }[] }[];
  readonly templating: { list: { name: string; datasource?: { type: string }; query: string }[] };
}

/** The ClickHouse queries of every dashboard, with where they come from. */
function dashboardQueries(): Query[] {
  return readdirSync(DASHBOARDS).flatMap((file) => {
    const d = JSON.parse(readFileSync(join(DASHBOARDS, file), 'utf8')) as Dashboard;
    const panels = d.panels
      .filter((p) => p.datasource.type === CLICKHOUSE_PLUGIN)
      .flatMap((p) => p.targets.map((t) => ({ where: `${file}: ${p.title}`, sql: t.rawSql ?? '' })));
    const variables = d.templating.list
      .filter((v) => v.datasource?.type === CLICKHOUSE_PLUGIN)
      .map((v) => ({ where: `${file}: variable $${v.name}`, sql: v.query }));
    return [...panels, ...variables];
  });
}

interface Selection {
  readonly fromMs: number;
  readonly toMs: number;
  /** Values picked per template variable; undefined = "All". */
  readonly variables: Readonly<Record<string, readonly string[] | undefined>>;
}

const quote = (v: string): string => `'${v.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;

/**
 * Grafana's interpolation followed by the ClickHouse plugin's macros, for the forms the dashboards
 * use. Anything left starting with `$` is a macro this does not know: the test fails on it rather
 * than sending it to ClickHouse.
 */
function interpolate(sql: string, s: Selection): string {
  const seconds = (ms: number): string => `toDateTime(${Math.floor(ms / 1000)})`;
  let out = sql
    .replace(/\$__conditionalAll\(([\s\S]+?),\s*\$(\w+)\)/g, (_m, condition: string, name: string) =>
      s.variables[name] === undefined ? '1=1' : condition,
    )
    .replace(/\$\{(\w+):singlequote\}/g, (_m, name: string) => (s.variables[name] ?? []).map(quote).join(','))
    .replaceAll('$__fromTime', seconds(s.fromMs))
    .replaceAll('$__toTime', seconds(s.toMs));
  out = out.replace(/\$(\w+)/g, (m, name: string) => {
    const v = s.variables[name];
    return v === undefined ? m : v.map(quote).join(',');
  });
  const unknown = /\$\{?\w+/.exec(out);
  if (unknown) throw new Error(`unknown macro or variable ${unknown[0]} in: ${sql}`);
  return out;
}

let db: TestDatabase;
let rows: IngestActivityRow[];
const lastDay = Math.floor(Date.now() / DAY_MS) * DAY_MS - DAY_MS;
const days = 10;
const range = { fromMs: lastDay - (days - 1) * DAY_MS, toMs: lastDay + DAY_MS - 1 };

async function rowsOf(sql: string): Promise<Record<string, unknown>[]> {
  const rs = await db.client.query({ query: sql, format: 'JSONEachRow' });
  return rs.json<Record<string, unknown>>();
}

beforeAll(async () => {
  db = await freshDatabase('grafana');
  await migrate({ client: db.client, database: db.name });
  rows = generate(7, 60, days, lastDay).rows;
  await db.client.insert({ table: 'ingest_user_activity', format: 'JSONEachRow', values: rows });
  // The finished daily numbers the first panels read come from the refresher.
  await testRefresher(db.client).pass();
});
afterAll(async () => {
  await db?.drop();
});

describe('interpolate', () => {
  it('replaces the time macros, a conditional on "All" and a multi-value selection', () => {
    const sql = `WHERE t >= $__fromTime AND t <= $__toTime AND $__conditionalAll(f IN ($\{f:singlequote}), $f)`;
    expect(interpolate(sql, { fromMs: 1_000, toMs: 2_000, variables: {} })).toBe(
      'WHERE t >= toDateTime(1) AND t <= toDateTime(2) AND 1=1',
    );
    expect(interpolate(sql, { fromMs: 1_000, toMs: 2_000, variables: { f: ['a', "b'c"] } })).toBe(
      "WHERE t >= toDateTime(1) AND t <= toDateTime(2) AND f IN ('a','b\\'c')",
    );
    expect(() => interpolate('WHERE $__timeFilter(t)', { ...range, variables: {} })).toThrow(/unknown macro/);
  });
});

describe('Grafana dashboard queries on ClickHouse', () => {
  const queries = dashboardQueries();

  it('finds the product dashboard queries (a renamed folder or field would find none)', () => {
    expect(queries.length).toBeGreaterThanOrEqual(8);
  });

  it.each(queries)('$where', async ({ sql }) => {
    const all = await rowsOf(interpolate(sql, { ...range, variables: {} }));
    expect(all.length).toBeGreaterThan(0);
    // Each template variable set to its first value, as a user narrowing a panel would.
    const features = (
      await rowsOf('SELECT DISTINCT feature FROM rollup_users_hourly_feature ORDER BY feature')
    )
      .map((r) => String(r.feature))
      .slice(0, 2);
    const narrowed = await rowsOf(interpolate(sql, { ...range, variables: { feature: features } }));
    expect(narrowed.length).toBeGreaterThan(0);
  });
});

describe('the same queries on current ClickHouse (chDB; docker compose runs 25.8)', () => {
  it('run after the migrations and return rows', async () => {
    // The refresher's finished rows as written on the server, so the views over them have data.
    const finished: string[] = [];
    for (const table of ['agg_active_users_daily', 'agg_active_users_days']) {
      const all = await rowsOf(`SELECT * FROM ${table}`);
      finished.push(
        `INSERT INTO ${table} FORMAT JSONEachRow ${all.map((r) => JSON.stringify(r)).join('\n')}`,
      );
    }
    const queries = dashboardQueries().map(({ sql }) => interpolate(sql, { ...range, variables: {} }));
    const { results } = runChdb(mkdtempSync(join(tmpdir(), 'chdb-grafana-')), [
      ...loadMigrations().flatMap((m) => m.statements.map((sql) => ({ sql }))),
      {
        sql: `INSERT INTO ingest_user_activity FORMAT JSONEachRow ${rows.map((r) => JSON.stringify(r)).join('\n')}`,
      },
      ...finished.map((sql) => ({ sql })),
      ...queries.map((sql) => ({ sql, format: 'JSONEachRow' })),
    ]);
    const answers = results.slice(-queries.length);
    for (let i = 0; i < queries.length; i++) expect(answers[i]?.trim(), queries[i]).not.toBe('');
  });
});
