import { describe, expect, it } from 'vitest';
import {
  clusterMigrationStatements,
  clusterStatements,
  localName,
  PLACEMENT,
  type TransformState,
  viewNames,
} from './cluster.ts';
import { addedColumn, loadMigrations } from './migrate.ts';

const target = { cluster: 'pipe', database: 'an' };
const state = (extra: string[] = []): TransformState => ({
  names: new Set([...Object.keys(PLACEMENT), ...extra]),
  nullTables: new Map(),
});
const one = (sql: string, s = state()): string[] => clusterStatements(sql, target, s);

describe('cluster transform of single statements', () => {
  it('splits a per-user table into a replicated shard-local table and a Distributed table by user', () => {
    const [local, dist] = one(
      'CREATE TABLE IF NOT EXISTS fact_user_activity (\n  user_key UInt64\n) ENGINE = ReplacingMergeTree\nORDER BY user_key',
    );
    expect(local).toBe(
      "CREATE TABLE IF NOT EXISTS an.fact_user_activity_local ON CLUSTER pipe (\n  user_key UInt64\n) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/an/fact_user_activity', '{replica}')\nORDER BY user_key",
    );
    expect(dist).toBe(
      'CREATE TABLE IF NOT EXISTS an.fact_user_activity ON CLUSTER pipe AS an.fact_user_activity_local ENGINE = Distributed(pipe, an, fact_user_activity_local, user_key)',
    );
  });

  it('replicates a shared table to every node under one path, keeping the engine arguments', () => {
    expect(
      one(
        'CREATE TABLE IF NOT EXISTS agg_active_users_days (\n  computed_at DateTime\n) ENGINE = ReplacingMergeTree(computed_at)\nORDER BY tz',
      ),
    ).toEqual([
      "CREATE TABLE IF NOT EXISTS an.agg_active_users_days ON CLUSTER pipe (\n  computed_at DateTime\n) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/an/agg_active_users_days', '{shard}-{replica}', computed_at)\nORDER BY tz",
    ]);
  });

  it('keeps a Null ingest table Null on every shard, its Distributed table sharded by the actor', () => {
    const [local, dist] = one(
      'CREATE TABLE IF NOT EXISTS ingest_user_activity (\n  actor_id String\n) ENGINE = Null',
    );
    expect(local).toBe(
      'CREATE TABLE IF NOT EXISTS an.ingest_user_activity_local ON CLUSTER pipe (\n  actor_id String\n) ENGINE = Null',
    );
    expect(dist).toContain('Distributed(pipe, an, ingest_user_activity_local, cityHash64(actor_id))');
  });

  it('makes a materialized view read the shard-local insert and write the shard-local or shared table', () => {
    const s = state(['mv_a', 'mv_b']);
    expect(
      one(
        'CREATE MATERIALIZED VIEW IF NOT EXISTS mv_a TO rollup_user_first_seen AS SELECT 1 FROM ingest_user_activity',
        s,
      ),
    ).toEqual([
      'CREATE MATERIALIZED VIEW IF NOT EXISTS an.mv_a ON CLUSTER pipe TO an.rollup_user_first_seen_local AS SELECT 1 FROM an.ingest_user_activity_local',
    ]);
    expect(
      one(
        'CREATE MATERIALIZED VIEW IF NOT EXISTS mv_b TO dim_features AS SELECT 1 FROM ingest_user_activity',
        s,
      ),
    ).toEqual([
      'CREATE MATERIALIZED VIEW IF NOT EXISTS an.mv_b ON CLUSTER pipe TO an.dim_features AS SELECT 1 FROM an.ingest_user_activity_local',
    ]);
  });

  it('qualifies table names outside string literals only, and reads Distributed tables in plain views', () => {
    expect(
      one(
        "CREATE VIEW IF NOT EXISTS v AS SELECT 'fact_user_activity' AS t, x.dim_users FROM fact_user_activity WHERE 1 IN (SELECT 1 FROM agg_active_users_days)",
        state(['v']),
      ),
    ).toEqual([
      "CREATE VIEW IF NOT EXISTS an.v ON CLUSTER pipe AS SELECT 'fact_user_activity' AS t, x.dim_users FROM an.fact_user_activity WHERE 1 IN (SELECT 1 FROM an.agg_active_users_days)",
    ]);
  });

  it('drops both halves of a sharded table', () => {
    expect(one('DROP TABLE IF EXISTS identify_log')).toEqual([
      'DROP TABLE IF EXISTS an.identify_log ON CLUSTER pipe',
      'DROP TABLE IF EXISTS an.identify_log_local ON CLUSTER pipe',
    ]);
  });

  it('adds a column below, then creates the Distributed table again over it (18.16 refuses its ALTER)', () => {
    expect(one('ALTER TABLE dim_users ADD COLUMN c Nullable(String)')).toEqual([
      'ALTER TABLE an.dim_users_local ON CLUSTER pipe ADD COLUMN c Nullable(String)',
      'DROP TABLE IF EXISTS an.dim_users ON CLUSTER pipe',
      'CREATE TABLE IF NOT EXISTS an.dim_users ON CLUSTER pipe AS an.dim_users_local ENGINE = Distributed(pipe, an, dim_users_local, user_key)',
    ]);
  });

  it('creates a Null table again with the added column, remembered for the next ALTER', () => {
    const s = state();
    one('CREATE TABLE IF NOT EXISTS ingest_user_identify (\n  user_id String\n) ENGINE = Null', s);
    one('ALTER TABLE ingest_user_identify ADD COLUMN a UInt8 DEFAULT 0', s);
    const out = one('ALTER TABLE ingest_user_identify ADD COLUMN b String', s);
    expect(out.slice(0, 2)).toEqual([
      'DROP TABLE IF EXISTS an.ingest_user_identify_local ON CLUSTER pipe',
      'CREATE TABLE IF NOT EXISTS an.ingest_user_identify_local ON CLUSTER pipe (\n  user_id String,\n  a UInt8 DEFAULT 0,\n  b String\n) ENGINE = Null',
    ]);
    expect(out[3]).toContain('AS an.ingest_user_identify_local ENGINE = Distributed');
  });

  it('refuses a table without a placement, and statements it has no cluster form for', () => {
    expect(() => one('CREATE TABLE IF NOT EXISTS brand_new (a UInt8) ENGINE = MergeTree ORDER BY a')).toThrow(
      /no placement/,
    );
    expect(() => one('RENAME TABLE dim_users TO x')).toThrow(/no cluster form/);
    expect(() => one('ALTER TABLE dim_users DROP COLUMN c')).toThrow(/only ADD COLUMN/);
  });

  it('refuses names that are not identifiers', () => {
    expect(() =>
      clusterStatements('DROP TABLE IF EXISTS dim_users', { cluster: 'a b', database: 'an' }, state()),
    ).toThrow(/invalid cluster/);
  });
});

describe('cluster transform of the real migrations', () => {
  const migrations = loadMigrations();
  const out = clusterMigrationStatements(migrations, target).flat();
  const names = new Set([...Object.keys(PLACEMENT), ...viewNames(migrations.flatMap((m) => m.statements))]);

  it('places every table the migrations create', () => {
    const created = migrations
      .flatMap((m) => m.statements)
      .flatMap((s) => /^CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+(\w+)/i.exec(s)?.[1] ?? []);
    expect(created.filter((t) => PLACEMENT[t] === undefined)).toEqual([]);
  });

  it('names every table with its database, outside string literals', () => {
    for (const s of out) {
      const code = s.replace(/'[^']*'/g, "''");
      for (const m of code.matchAll(/(?<![\w.])([A-Za-z_]\w*)(?![\w])/g)) {
        const word = m[1] as string;
        const bare = word.endsWith('_local') ? word.slice(0, -'_local'.length) : word;
        // Distributed(cluster, db, local_table) names the table as an argument, by design.
        if (names.has(bare) && !code.includes(`Distributed(pipe, an, ${word}`)) {
          expect.fail(`unqualified ${word} in: ${s.slice(0, 200)}`);
        }
      }
    }
  });

  it('runs every DDL statement on the whole cluster and only INSERTs once', () => {
    for (const s of out) {
      if (/^INSERT\b/i.test(s)) expect(s).not.toContain('ON CLUSTER');
      else expect(s).toContain('ON CLUSTER pipe');
    }
  });

  it('has every materialized view read a shard-local ingest table and write a local or shared table', () => {
    const views = out.filter((s) => s.startsWith('CREATE MATERIALIZED VIEW'));
    expect(views.length).toBeGreaterThan(10);
    for (const v of views) {
      expect(v).toMatch(/FROM an\.ingest_user_(activity|identify)_local\b/);
      const to = /TO an\.(\w+) AS/.exec(v)?.[1] ?? '';
      expect(to.endsWith('_local') ? PLACEMENT[to.slice(0, -6)]?.kind : PLACEMENT[to]?.kind).toBe(
        to.endsWith('_local') ? 'sharded' : 'everywhere',
      );
    }
  });

  it("keeps the runner's skip-if-present check working on the cluster ALTERs", () => {
    const adds = out.flatMap((s) => addedColumn(s) ?? []);
    expect(adds).toContainEqual({ table: localName('dim_users'), column: 'country_code' });
  });
});
