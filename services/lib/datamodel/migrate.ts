/**
 * Migration runner: applies clickhouse/migrations/NNNN_name.sql in order, once each, recording
 * version, name and sha256 in `schema_migrations`; then makes sure dim_dates is filled. Re-running
 * is a no-op. Editing an applied file is refused (MIGRATION_CHECKSUM_MISMATCH): applied migrations
 * are immutable, a change is a new file. Every statement is written to be re-runnable
 * (IF NOT EXISTS), so a run interrupted half-way through a file can simply be repeated. 18.16 has no
 * `ADD COLUMN IF NOT EXISTS`, so the runner gives `ALTER TABLE t ADD COLUMN c ...` that meaning
 * itself: it skips the statement when t already has c (see addedColumn).
 *
 * Cluster mode (`cluster`, `--cluster NAME`): the same migrations, turned by cluster.ts
 * into ON CLUSTER DDL over Replicated and Distributed tables (clickhouse/CLUSTER.md); the database
 * and schema_migrations are created on every node of the cluster, the rest as in single-node mode.
 *
 * The command (`npm run migrate`, its flags and environment) is clickhouse/migrate.ts.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClickHouseClient } from '../clickhouse.ts';
import { DATAMODEL_CODES } from '../error-codes.ts';
import { PipelineError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { IDENTIFIER_RE } from '../sql.ts';
import { clusterMigrationStatements, clusterStatements, PLACEMENT } from './cluster.ts';
import { populateDimDates } from './dim-dates.ts';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../clickhouse/migrations/', import.meta.url));
const FILE_RE = /^(\d{4})_([a-z0-9_]+)\.sql$/;

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly checksum: string;
  readonly statements: readonly string[];
}

/**
 * Splits a migration into statements: `--` comment lines are dropped and a statement ends with a
 * `;` at the end of a line (migrations never put `;` at a line end inside a string literal).
 */
export function splitStatements(sql: string): string[] {
  const body = sql
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('--'))
    .join('\n');
  return body
    .split(/;[ \t]*(?:\n|$)/)
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

// Also in cluster form: `ALTER TABLE db.t ON CLUSTER c ADD COLUMN ...`.
const ADD_COLUMN_RE = /^ALTER\s+TABLE\s+(?:\w+\.)?(\w+)\s+(?:ON\s+CLUSTER\s+\w+\s+)?ADD\s+COLUMN\s+(\w+)\s/i;

/**
 * The table and column an `ALTER TABLE t ADD COLUMN c <type>` statement adds, else undefined. One
 * column per statement: the runner's skip-if-present check looks at that one column only.
 */
export function addedColumn(statement: string): { table: string; column: string } | undefined {
  const m = ADD_COLUMN_RE.exec(statement);
  if (!m) return undefined;
  if ((statement.match(/\bADD\s+COLUMN\b/gi) ?? []).length > 1) {
    throw new PipelineError(
      DATAMODEL_CODES.migrationAddColumns,
      `add one column per ALTER statement: ${statement}`,
    );
  }
  return { table: m[1] ?? '', column: m[2] ?? '' };
}

async function hasColumn(client: ClickHouseClient, table: string, column: string): Promise<boolean> {
  const rs = await client.query({
    query: `SELECT count() AS n FROM system.columns
            WHERE database = currentDatabase() AND table = '${table}' AND name = '${column}'`,
    format: 'JSONEachRow',
  });
  const [row] = await rs.json<{ n: string | number }>();
  return Number(row?.n) > 0;
}

export function loadMigrations(dir: string = MIGRATIONS_DIR): Migration[] {
  const out: Migration[] = [];
  for (const file of readdirSync(dir).sort()) {
    const m = FILE_RE.exec(file);
    if (!m) continue;
    const text = readFileSync(join(dir, file), 'utf8');
    const version = Number(m[1]);
    if (out.some((x) => x.version === version)) {
      throw new PipelineError(
        DATAMODEL_CODES.migrationDuplicateVersion,
        `two migrations with version ${version}`,
      );
    }
    out.push({
      version,
      name: m[2] ?? '',
      checksum: createHash('sha256').update(text).digest('hex'),
      statements: splitStatements(text),
    });
  }
  return out;
}

export interface MigrateOptions {
  /** A client whose default database is `database` (createClickHouse({ database })). */
  readonly client: ClickHouseClient;
  readonly database: string;
  readonly logger?: Logger;
  readonly dir?: string;
  /** ISO 3166 country whose public holidays mark dim_dates (default US). */
  readonly holidayCountry?: string;
  /** Cluster mode: the cluster (remote_servers name) the client's node belongs to. */
  readonly cluster?: string;
}

const SCHEMA_MIGRATIONS = `CREATE TABLE IF NOT EXISTS schema_migrations (
      version UInt32, name String, checksum String, applied_at DateTime('UTC')
    ) ENGINE = MergeTree ORDER BY version`;

export interface MigrateResult {
  readonly applied: readonly string[];
  readonly alreadyApplied: readonly string[];
}

export async function migrate(o: MigrateOptions): Promise<MigrateResult> {
  const { client, database } = o;
  const log = o.logger?.child({ component: 'migrate', database });
  if (!IDENTIFIER_RE.test(database)) {
    throw new PipelineError(
      DATAMODEL_CODES.migrationBadDatabase,
      `invalid database name ${JSON.stringify(database)}`,
    );
  }
  // Migrations name no database: they land in the client's default one, which must be ours.
  const rs = await client.query({ query: 'SELECT currentDatabase() AS db', format: 'JSONEachRow' });
  const [cur] = await rs.json<{ db: string }>();
  if (cur?.db !== database) {
    throw new PipelineError(
      DATAMODEL_CODES.migrationWrongDatabase,
      `client's default database is ${cur?.db}, expected ${database}`,
    );
  }
  const target = o.cluster === undefined ? undefined : { cluster: o.cluster, database };
  if (target) {
    await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${database} ON CLUSTER ${target.cluster}` });
  }
  for (const query of target
    ? clusterStatements(SCHEMA_MIGRATIONS, target, {
        names: new Set(Object.keys(PLACEMENT)),
        nullTables: new Map(),
      })
    : [SCHEMA_MIGRATIONS]) {
    await client.command({ query });
  }
  const appliedRs = await client.query({
    query: 'SELECT version, name, checksum FROM schema_migrations ORDER BY version',
    format: 'JSONEachRow',
  });
  const recorded = new Map(
    (await appliedRs.json<{ version: number; name: string; checksum: string }>()).map((r) => [
      Number(r.version),
      r,
    ]),
  );

  const applied: string[] = [];
  const alreadyApplied: string[] = [];
  const migrations = loadMigrations(o.dir);
  const statements = target
    ? clusterMigrationStatements(migrations, target)
    : migrations.map((m) => m.statements);
  // Checked before anything runs, so an edited file stops the run without half-applying later ones.
  for (const m of migrations) {
    const r = recorded.get(m.version);
    if (r && r.checksum !== m.checksum) {
      throw new PipelineError(
        DATAMODEL_CODES.migrationChecksumMismatch,
        `migration ${m.version}_${m.name} was changed after it was applied to ${database} ` +
          `(recorded ${r.checksum.slice(0, 12)}, file ${m.checksum.slice(0, 12)}); add a new migration instead`,
      );
    }
  }
  for (const [i, m] of migrations.entries()) {
    const id = `${String(m.version).padStart(4, '0')}_${m.name}`;
    if (recorded.has(m.version)) {
      alreadyApplied.push(id);
      continue;
    }
    log?.info({ migration: id, statements: m.statements.length }, 'applying migration');
    for (const statement of statements[i] ?? []) {
      const add = addedColumn(statement);
      // Present already: this file was interrupted after the statement on an earlier run.
      if (add && (await hasColumn(client, add.table, add.column))) continue;
      await client.command({ query: statement });
    }
    await client.insert({
      table: 'schema_migrations',
      format: 'JSONEachRow',
      values: [
        { version: m.version, name: m.name, checksum: m.checksum, applied_at: Math.floor(Date.now() / 1000) },
      ],
    });
    applied.push(id);
  }
  const dates = await populateDimDates(
    client,
    o.holidayCountry === undefined ? {} : { country: o.holidayCountry },
  );
  log?.info(
    { applied, alreadyApplied: alreadyApplied.length, dimDatesInserted: dates.inserted },
    'migrations done',
  );
  return { applied, alreadyApplied };
}
