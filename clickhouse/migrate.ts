/**
 * `npm run migrate` (also the image's migrations job): CLICKHOUSE_URL (default
 * http://127.0.0.1:8123), CLICKHOUSE_DATABASE (default analytics; created if missing),
 * CLICKHOUSE_USER, CLICKHOUSE_PASSWORD; `--holiday-country XX` (default US); `--cluster NAME`
 * or CLICKHOUSE_CLUSTER=NAME (clickhouse/CLUSTER.md). The runner is services/lib/datamodel/migrate.ts.
 */
import { migrate } from '../services/lib/datamodel/migrate.ts';
import { argValue, runCommand } from './command.ts';

runCommand(
  'migrate',
  async ({ client, database, cluster: fromEnv, logger }) => {
    const country = argValue(process.argv, 'holiday-country');
    const cluster = argValue(process.argv, 'cluster') ?? fromEnv?.cluster;
    await migrate({
      client,
      database,
      logger,
      ...(country ? { holidayCountry: country } : {}),
      ...(cluster ? { cluster } : {}),
    });
  },
  { createDatabase: true },
);
