/**
 * Cluster mode of the migrations, pure: turns the single-node statements of
 * clickhouse/migrations/ into the statements that build the same schema on a ClickHouse cluster
 * (`migrate --cluster NAME`), so there is one set of migrations, not two that drift. See
 * clickhouse/CLUSTER.md for the model; in short:
 *
 *   - Per-user tables (PLACEMENT 'sharded') become X_local, a Replicated*MergeTree per shard
 *     (ZooKeeper path /clickhouse/tables/{shard}/<db>/X, replica {replica}), plus a Distributed
 *     table named X over them: every reader and writer keeps the seed's names. The ingest tables'
 *     Distributed tables shard by user (cityHash64 of the actor / user id, = user_key), so a user's
 *     facts, sketches, first-seen minimums and profile all live on one shard.
 *   - Small shared tables (dimensions without a user key, the refresher's finished numbers, marks,
 *     bookkeeping; PLACEMENT 'everywhere') are one Replicated*MergeTree replicated to every node
 *     (path /clickhouse/tables/all/<db>/X, replica {shard}-{replica}), read locally wherever a
 *     query runs; FINAL and IN-subqueries over them need no cross-shard step.
 *   - Materialized views read the shard-local ingest table (they fire where the Distributed insert
 *     delivered the rows) and write X_local, or the 'everywhere' table itself.
 *   - DDL carries ON CLUSTER; every table name is qualified with the database, because 18.16's
 *     DDL worker runs each host's copy in the `default` database (only the created table's own
 *     name gets the initiator's database).
 *
 * Only the statement forms the migrations use are accepted (CREATE TABLE/VIEW/MATERIALIZED VIEW
 * IF NOT EXISTS, DROP TABLE IF EXISTS, ALTER TABLE, INSERT INTO ... SELECT); anything else, and any
 * table missing from PLACEMENT, throws: a new table needs a placement decision, not a guess.
 */
import { DATAMODEL_CODES } from '../error-codes.ts';
import { PipelineError } from '../errors.ts';
import { IDENTIFIER_RE } from '../sql.ts';

export type Placement =
  | { readonly kind: 'sharded'; readonly shardBy?: string }
  | { readonly kind: 'everywhere' };

const sharded = (shardBy?: string): Placement =>
  shardBy === undefined ? { kind: 'sharded' } : { kind: 'sharded', shardBy };
const everywhere: Placement = { kind: 'everywhere' };

/**
 * Where each table of the migrations lives. `shardBy` is the Distributed table's sharding key,
 * given where rows are inserted through it (the consumer's ingest tables) or may be: it must put a
 * user on the shard cityHash64(actor_id) does, so user_key itself where the table has it.
 * Sharded tables without a key (rollups, details) are filled only by the shard-local views; an
 * insert into their Distributed table fails on a cluster of more than one shard, on purpose.
 */
export const PLACEMENT: Readonly<Record<string, Placement>> = {
  ingest_user_activity: sharded('cityHash64(actor_id)'),
  ingest_user_identify: sharded('cityHash64(user_id)'),
  fact_user_activity: sharded('user_key'),
  fact_activity_details: sharded(),
  dim_users: sharded('user_key'),
  identity_map: sharded('cityHash64(user_id)'),
  identify_log: sharded('cityHash64(user_id)'),
  rollup_users_hourly_total: sharded(),
  rollup_users_hourly_feature: sharded(),
  rollup_users_hourly_slice: sharded(),
  rollup_user_first_seen: sharded('user_key'),
  dim_user_segments: everywhere,
  dim_features: everywhere,
  dim_devices: everywhere,
  dim_geographies: everywhere,
  dim_activity_types: everywhere,
  dim_dates: everywhere,
  user_deletions: everywhere,
  agg_active_users_daily: everywhere,
  agg_active_users_days: everywhere,
  agg_dirty_hours: everywhere,
  fact_retention: everywhere,
  schema_migrations: everywhere,
};

export interface ClusterTarget {
  readonly cluster: string;
  readonly database: string;
}

/**
 * The target of a CLICKHOUSE_CLUSTER setting: undefined for '' (one node), else the cluster and
 * database, both checked to be plain names (statements are built with them).
 */
export function clusterTarget(cluster: string, database: string): ClusterTarget | undefined {
  if (cluster === '') return undefined;
  if (!IDENTIFIER_RE.test(cluster) || !IDENTIFIER_RE.test(database)) {
    throw new PipelineError(
      DATAMODEL_CODES.clusterBadName,
      `invalid cluster or database name: ${cluster}, ${database}`,
    );
  }
  return { cluster, database };
}

/** The shard-local table behind the Distributed table `name`. */
export const localName = (name: string): string => `${name}_local`;

const CREATE_TABLE_RE = /^CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+(\w+)\s*\(([\s\S]*)$/i;
const CREATE_MV_RE =
  /^CREATE\s+MATERIALIZED\s+VIEW\s+IF\s+NOT\s+EXISTS\s+(\w+)\s+TO\s+(\w+)\s+AS\s+([\s\S]*)$/i;
const CREATE_VIEW_RE = /^CREATE\s+VIEW\s+IF\s+NOT\s+EXISTS\s+(\w+)\s+AS\s+([\s\S]*)$/i;
const DROP_RE = /^DROP\s+TABLE\s+IF\s+EXISTS\s+(\w+)$/i;
const ALTER_RE = /^ALTER\s+TABLE\s+(\w+)\s+([\s\S]*)$/i;
const INSERT_RE = /^INSERT\s+INTO\s+\w+\s/i;
/** `ENGINE = [Kind]MergeTree[(args)]`; Kind is Replacing, Aggregating, Summing, ... */
const ENGINE_RE = /\bENGINE\s*=\s*(\w*)MergeTree\b(\s*\(([^)]*)\))?/i;
const NULL_ENGINE_RE = /\bENGINE\s*=\s*Null\b/i;

/** Names a CREATE [MATERIALIZED] VIEW of the statements defines. */
export function viewNames(statements: Iterable<string>): string[] {
  const out: string[] = [];
  for (const s of statements) {
    const m = CREATE_MV_RE.exec(s) ?? CREATE_VIEW_RE.exec(s);
    if (m?.[1]) out.push(m[1]);
  }
  return out;
}

/**
 * `sql` with every name of `names` outside string literals written as `<db>.<name>`, or, where
 * `local` says so, as `<db>.<name>_local`. Migrations quote only with '...' (no backslash escapes
 * that hide a quote: '' inside a literal splits it into two literals, which changes nothing here).
 */
function qualify(
  sql: string,
  database: string,
  names: ReadonlySet<string>,
  local: (name: string) => boolean,
): string {
  return sql
    .split(/('[^']*')/)
    .map((part, i) =>
      i % 2 === 1
        ? part
        : part.replace(/(?<![\w.])([A-Za-z_]\w*)(?![\w.])/g, (word: string) =>
            names.has(word) ? `${database}.${local(word) ? localName(word) : word}` : word,
          ),
    )
    .join('');
}

/** Where `table` lives; throws for a table PLACEMENT does not name. */
export function placement(table: string): Placement {
  const p = PLACEMENT[table];
  if (!p) {
    throw new PipelineError(
      DATAMODEL_CODES.clusterUnplacedTable,
      `table ${table} has no placement in services/lib/datamodel/cluster.ts PLACEMENT: decide whether it is sharded by user or replicated everywhere`,
    );
  }
  return p;
}

const isSharded = (table: string): boolean => PLACEMENT[table]?.kind === 'sharded';

/** `ENGINE = XMergeTree(args)` -> `ENGINE = ReplicatedXMergeTree('<path>', '<replica>', args)`. */
function replicatedEngine(body: string, zkPath: string, replica: string): string {
  return body.replace(
    ENGINE_RE,
    (_all, kind: string, _parens: string | undefined, args: string | undefined) => {
      const rest = args?.trim() ? `, ${args.trim()}` : '';
      return `ENGINE = Replicated${kind}MergeTree('${zkPath}', '${replica}'${rest})`;
    },
  );
}

/**
 * What the transform knows from earlier statements: every table and view name the migrations
 * create (the words it qualifies: PLACEMENT's tables plus viewNames of all migrations), and the
 * column list of each shard-local Null table so far (see the ALTER case).
 */
export interface TransformState {
  readonly names: ReadonlySet<string>;
  readonly nullTables: Map<string, string>;
}

const ADD_COLUMN_RE = /^ADD\s+COLUMN\s+([\s\S]+)$/i;

/** The cluster statements for one single-node statement; records what later ones need in `state`. */
export function clusterStatements(statement: string, t: ClusterTarget, state: TransformState): string[] {
  const { cluster, database: db } = t;
  if (!IDENTIFIER_RE.test(cluster) || !IDENTIFIER_RE.test(db)) {
    throw new PipelineError(
      DATAMODEL_CODES.clusterBadName,
      `invalid cluster or database name: ${cluster}, ${db}`,
    );
  }
  const { names } = state;
  const on = `ON CLUSTER ${cluster}`;
  const plain = (sql: string): string => qualify(sql, db, names, () => false);
  const dropOne = (n: string): string => `DROP TABLE IF EXISTS ${db}.${n} ${on}`;
  const distributed = (name: string): string => {
    const p = placement(name);
    const key = p.kind === 'sharded' && p.shardBy !== undefined ? `, ${p.shardBy}` : '';
    return `CREATE TABLE IF NOT EXISTS ${db}.${name} ${on} AS ${db}.${localName(name)} ENGINE = Distributed(${cluster}, ${db}, ${localName(name)}${key})`;
  };

  const table = CREATE_TABLE_RE.exec(statement);
  if (table) {
    const [, name = '', body = ''] = table;
    const p = placement(name);
    if (p.kind === 'everywhere') {
      if (!ENGINE_RE.test(body))
        throw unsupported(statement, 'a table replicated everywhere needs a MergeTree engine');
      const engine = replicatedEngine(body, `/clickhouse/tables/all/${db}/${name}`, '{shard}-{replica}');
      return [`CREATE TABLE IF NOT EXISTS ${db}.${name} ${on} (${engine}`];
    }
    if (NULL_ENGINE_RE.test(body)) state.nullTables.set(name, body);
    const local = NULL_ENGINE_RE.test(body)
      ? body
      : ENGINE_RE.test(body)
        ? replicatedEngine(body, `/clickhouse/tables/{shard}/${db}/${name}`, '{replica}')
        : undefined;
    if (local === undefined) throw unsupported(statement, 'a sharded table needs a MergeTree or Null engine');
    return [`CREATE TABLE IF NOT EXISTS ${db}.${localName(name)} ${on} (${local}`, distributed(name)];
  }

  const mv = CREATE_MV_RE.exec(statement);
  if (mv) {
    const [, name = '', target = '', select = ''] = mv;
    const to = placement(target).kind === 'sharded' ? localName(target) : target;
    // The view fires on the insert into the shard-local table and reads only that block.
    return [
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.${name} ${on} TO ${db}.${to} AS ${qualify(select, db, names, isSharded)}`,
    ];
  }

  const view = CREATE_VIEW_RE.exec(statement);
  if (view) {
    const [, name = '', select = ''] = view;
    return [`CREATE VIEW IF NOT EXISTS ${db}.${name} ${on} AS ${plain(select)}`];
  }

  const drop = DROP_RE.exec(statement);
  if (drop) {
    const [, name = ''] = drop;
    return isSharded(name) ? [dropOne(name), dropOne(localName(name))] : [dropOne(name)];
  }

  const alter = ALTER_RE.exec(statement);
  if (alter) {
    const [, name = '', rest = ''] = alter;
    if (placement(name).kind === 'everywhere') return [`ALTER TABLE ${db}.${name} ${on} ${plain(rest)}`];
    // 18.16's DDL worker refuses an ALTER ... ON CLUSTER of a table that is not replicated in a
    // cluster whose shards replicate (internal_replication): the Distributed and Null tables. Both
    // hold no data, so they are created again instead: the Null table with the column added to the
    // columns it was created with (its views stay attached: they name their source), the
    // Distributed table from the shard-local one (AS copies its columns).
    const add = ADD_COLUMN_RE.exec(rest.trim());
    if (!add) throw unsupported(statement, 'a sharded table takes only ADD COLUMN');
    const nullBody = state.nullTables.get(name);
    let local: string[];
    if (nullBody === undefined) local = [`ALTER TABLE ${db}.${localName(name)} ${on} ${plain(rest)}`];
    else {
      const body = nullBody.replace(/\s*\)\s*ENGINE\s*=\s*Null\b/i, (tail) => `,\n  ${add[1]}${tail}`);
      state.nullTables.set(name, body);
      local = [
        dropOne(localName(name)),
        `CREATE TABLE IF NOT EXISTS ${db}.${localName(name)} ${on} (${body}`,
      ];
    }
    // The shard-local table first: the Distributed table copies its columns.
    return [...local, dropOne(name), distributed(name)];
  }

  // Runs once, on the node the migrator talks to: into an 'everywhere' table (replicated from
  // there) or a Distributed one (sharded from there).
  if (INSERT_RE.test(statement)) return [plain(statement)];

  throw unsupported(statement, 'no cluster form for this statement');
}

function unsupported(statement: string, why: string): PipelineError {
  return new PipelineError(DATAMODEL_CODES.clusterUnsupportedStatement, `${why}: ${statement.slice(0, 120)}`);
}

/** Statements of each migration in cluster form (one single-node statement may become two). */
export function clusterMigrationStatements(
  migrations: readonly { readonly statements: readonly string[] }[],
  t: ClusterTarget,
): string[][] {
  const state: TransformState = {
    names: new Set([...Object.keys(PLACEMENT), ...viewNames(migrations.flatMap((m) => m.statements))]),
    nullTables: new Map(),
  };
  return migrations.map((m) => m.statements.flatMap((s) => clusterStatements(s, t, state)));
}
