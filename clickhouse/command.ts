/**
 * Shared composition root of the clickhouse/ commands (migrate, rebuild, retention, delete-user):
 * reads the connection config once from the environment and builds a client bound to the
 * pipeline's database. The work itself lives under services/ (services/lib/datamodel/).
 */
import { type ClickHouseClient, createClickHouse } from '../services/lib/clickhouse.ts';
import { identifier, readConfig, str, url } from '../services/lib/config.ts';
import { type ClusterTarget, clusterTarget } from '../services/lib/datamodel/cluster.ts';
import { COMMAND_CODES } from '../services/lib/error-codes.ts';
import { PipelineError } from '../services/lib/errors.ts';
import { createLogger, type Logger } from '../services/lib/logger.ts';
import { IDENTIFIER_RE } from '../services/lib/sql.ts';

const SPEC = {
  CLICKHOUSE_URL: url('ClickHouse HTTP URL', 'http://127.0.0.1:8123'),
  CLICKHOUSE_DATABASE: str('database the pipeline uses', 'analytics'),
  CLICKHOUSE_USER: str('ClickHouse user with DDL rights', 'default'),
  CLICKHOUSE_PASSWORD: { parse: (raw: string) => raw, fallback: '', doc: 'password of CLICKHOUSE_USER' },
  CLICKHOUSE_CLUSTER: identifier(
    'the remote_servers cluster the database lives on (clickhouse/CLUSTER.md); empty = one node',
    '',
  ),
  LOG_LEVEL: str('pino level', 'info'),
};

export interface CommandContext {
  readonly client: ClickHouseClient;
  readonly database: string;
  /** From CLICKHOUSE_CLUSTER; undefined on one node. */
  readonly cluster: ClusterTarget | undefined;
  readonly logger: Logger;
}

/**
 * Runs `body` with a client bound to CLICKHOUSE_DATABASE (created first when `createDatabase`),
 * closes it, and exits 1 with the error message on failure.
 */
export function runCommand(
  name: string,
  body: (ctx: CommandContext) => Promise<void>,
  o: { createDatabase?: boolean } = {},
): void {
  const run = async (): Promise<void> => {
    const cfg = readConfig(SPEC, process.env);
    const logger = createLogger(name, cfg.LOG_LEVEL);
    const database = cfg.CLICKHOUSE_DATABASE;
    if (!IDENTIFIER_RE.test(database)) {
      throw new PipelineError(COMMAND_CODES.badDatabase, `invalid database name ${JSON.stringify(database)}`);
    }
    const auth = {
      url: cfg.CLICKHOUSE_URL,
      username: cfg.CLICKHOUSE_USER,
      password: cfg.CLICKHOUSE_PASSWORD,
      logger,
    };
    if (o.createDatabase) {
      const admin = createClickHouse(auth);
      await admin
        .command({ query: `CREATE DATABASE IF NOT EXISTS ${database}` })
        .finally(() => admin.close());
    }
    const cluster = clusterTarget(cfg.CLICKHOUSE_CLUSTER, database);
    const client = createClickHouse({ ...auth, database });
    try {
      await body({ client, database, cluster, logger });
    } finally {
      await client.close();
    }
  };
  run().catch((err: unknown) => {
    process.stderr.write(`${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}

/** `--name value` from argv, or undefined. */
export function argValue(argv: readonly string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
}
