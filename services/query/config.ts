/**
 * The query service's configuration: one spec, read once by main.ts, every bad value reported at
 * once. No default secret: without QUERY_TOKENS the API is open, which suits the loopback-bound
 * local stack; any shared deployment sets tokens.
 */
import {
  bool,
  ConfigError,
  identifier,
  int,
  isLoopbackHost,
  list,
  oneOf,
  readConfig,
  secret,
  str,
  url,
} from '../lib/config.ts';
import { MAX_RANGE_DAYS } from './params.ts';

export const QUERY_CONFIG = {
  HOST: str('address to listen on (0.0.0.0 in a container)', '127.0.0.1'),
  PORT: int('HTTP port of the API and dashboard', 8081, 1, 65535),
  LOG_LEVEL: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'pino log level', 'info'),
  CLICKHOUSE_URL: url('ClickHouse HTTP endpoint', 'http://127.0.0.1:8123'),
  CLICKHOUSE_DATABASE: str('database holding the rollups', 'analytics'),
  CLICKHOUSE_USER: str('read-only ClickHouse user with per-query limits in its profile', 'analytics_reader'),
  CLICKHOUSE_PASSWORD: secret(str('password of CLICKHOUSE_USER', '')),
  CLICKHOUSE_TIMEOUT_MS: int('HTTP timeout of one ClickHouse query', 20_000, 100, 600_000),
  REQUEST_TIMEOUT_MS: int('a request must arrive within this, else 408', 10_000, 100),
  QUERY_TOKENS: secret(
    list('comma-separated bearer tokens for /v1; unset = open read access (loopback HOST only)', []),
  ),
  INSECURE_DEV: bool('allow open read access (no QUERY_TOKENS) on a non-loopback HOST', false),
  QUERY_ADMIN_TOKENS: secret(
    list('bearer tokens for the admin route (DELETE /v1/admin/users/:id); unset = no route', []),
  ),
  CLICKHOUSE_ADMIN_USER: str(
    'ClickHouse user the admin route deletes with (needs ALTER ... DELETE)',
    'default',
  ),
  CLICKHOUSE_ADMIN_PASSWORD: secret(str('password of CLICKHOUSE_ADMIN_USER', '')),
  CLICKHOUSE_CLUSTER: identifier(
    'the remote_servers cluster the database lives on (clickhouse/CLUSTER.md): the admin route deletes in its cluster form; empty = one node',
    '',
  ),
  QUERY_RATE_LIMIT_PER_MINUTE: int('requests per minute per token or client address on /v1', 600, 1),
  QUERY_MAX_GROUPS: int(
    'a group-by over more groups than this (estimated first) is refused with a 400 before ClickHouse does the work',
    1_000,
    1,
    1_000_000,
  ),
  QUERY_CACHE_DAYS: int(
    'closed days of estimated answers kept in memory (per request shape and day, at most 200 rows each); 0 turns the cache off',
    2_000,
    0,
    1_000_000,
  ),
  QUERY_MAX_RANGE_DAYS: int('longest from..to span in days', MAX_RANGE_DAYS, 1, MAX_RANGE_DAYS),
  QUERY_DASHBOARD_DIR: str('the built dashboard to serve (default services/query/dashboard/dist)', ''),
  SHUTDOWN_DEADLINE_MS: int('hard deadline for a graceful shutdown', 10_000, 100, 120_000),
};

export type QueryConfig = ReturnType<typeof readQueryConfig>;

export function readQueryConfig(env: Readonly<Record<string, string | undefined>>) {
  const c = readConfig(QUERY_CONFIG, env);
  // Open read access is for the loopback-bound local stack: anyone reaching the port would read
  // every number (and, through group-bys, per-country and per-segment user counts).
  if (!c.INSECURE_DEV && !isLoopbackHost(c.HOST) && c.QUERY_TOKENS.length === 0) {
    throw new ConfigError([
      `QUERY_TOKENS: required on HOST=${c.HOST}, reachable from other machines (or INSECURE_DEV=1 if this is a throwaway stack)`,
    ]);
  }
  return c;
}
