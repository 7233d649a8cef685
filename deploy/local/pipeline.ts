/**
 * The whole pipeline on one machine: the stack (Kafka + ClickHouse, stack.ts), the ClickHouse
 * migrations, then the collector, consumer, refresher and query services as background processes with pid and
 * log files under .data/, each waited for on its /readyz. Idempotent like the stack: a running
 * service is left as it is.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DEV_WRITE_KEY } from '../../services/collector/http/write-keys.ts';
import { SERVICE_PROCESS_ENV } from '../process-env.ts';
import {
  type Endpoints,
  readPid,
  type StackOptions,
  spawnDetached,
  down as stackDown,
  stopPid,
  up,
  waitFor,
} from './stack.ts';

const ROOT = new URL('../../', import.meta.url).pathname;

export interface PipelineService {
  readonly name: string;
  readonly script: string;
  readonly env: Readonly<Record<string, string>>;
  readonly readyUrl: string;
}

/** The local stack's write key; documented in the README, never a default in the collector. */
export const LOCAL_WRITE_KEY = DEV_WRITE_KEY;

export function pipelineServices(
  e: Endpoints,
  env: Readonly<Record<string, string | undefined>>,
): PipelineService[] {
  const collectorPort = env.COLLECTOR_PORT || '8080';
  const queryPort = env.QUERY_PORT || '8081';
  const consumerPort = env.CONSUMER_HTTP_PORT || '9464';
  const refresherPort = env.REFRESHER_HTTP_PORT || '9465';
  const database = env.CLICKHOUSE_DATABASE || 'analytics';
  const common = {
    KAFKA_BROKERS: e.kafkaBrokers,
    ...(e.kafkaReplicationFactor === undefined
      ? {}
      : { KAFKA_REPLICATION_FACTOR: String(e.kafkaReplicationFactor) }),
    LOG_LEVEL: env.LOG_LEVEL || 'info',
  };
  return [
    {
      name: 'consumer',
      script: 'services/consumer/main.ts',
      env: {
        ...common,
        CLICKHOUSE_URL: e.clickhouseUrl,
        CLICKHOUSE_DATABASE: database,
        CONSUMER_HTTP_PORT: consumerPort,
      },
      readyUrl: `http://127.0.0.1:${consumerPort}/readyz`,
    },
    {
      name: 'collector',
      script: 'services/collector/main.ts',
      env: { ...common, PORT: collectorPort, WRITE_KEYS: env.WRITE_KEYS || `${LOCAL_WRITE_KEY}:local` },
      readyUrl: `http://127.0.0.1:${collectorPort}/readyz`,
    },
    {
      name: 'refresher',
      script: 'services/refresher/main.ts',
      env: {
        // Kafka for its lease: one refresher per cluster runs passes.
        ...common,
        CLICKHOUSE_URL: e.clickhouseUrl,
        CLICKHOUSE_DATABASE: database,
        REFRESHER_HTTP_PORT: refresherPort,
        ...(env.REFRESH_TIME_ZONES ? { REFRESH_TIME_ZONES: env.REFRESH_TIME_ZONES } : {}),
      },
      readyUrl: `http://127.0.0.1:${refresherPort}/readyz`,
    },
    {
      name: 'query',
      script: 'services/query/main.ts',
      env: {
        LOG_LEVEL: common.LOG_LEVEL,
        PORT: queryPort,
        CLICKHOUSE_URL: e.clickhouseUrl,
        CLICKHOUSE_DATABASE: database,
        CLICKHOUSE_USER: env.QUERY_CLICKHOUSE_USER || 'analytics_reader',
      },
      readyUrl: `http://127.0.0.1:${queryPort}/readyz`,
    },
  ];
}

function dirs(o: StackOptions): { run: string; logs: string } {
  const run = join(o.dataDir, 'run');
  const logs = join(o.dataDir, 'logs');
  mkdirSync(run, { recursive: true });
  mkdirSync(logs, { recursive: true });
  return { run, logs };
}

async function httpOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return res.ok;
  } catch {
    return false;
  }
}

export function migrate(
  e: Endpoints,
  env: Readonly<Record<string, string | undefined>>,
  log: (l: string) => void,
): void {
  log('clickhouse: applying migrations');
  const r = spawnSync(process.execPath, [join(ROOT, 'clickhouse', 'migrate.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      CLICKHOUSE_URL: e.clickhouseUrl,
      CLICKHOUSE_DATABASE: env.CLICKHOUSE_DATABASE || 'analytics',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`migrations failed (exit ${r.status})`);
}

/** The query service serves the dashboard bundle and refuses to start without it. */
export function buildDashboard(log: (l: string) => void): void {
  log('query: building the dashboard');
  const r = spawnSync(process.execPath, [join(ROOT, 'services', 'query', 'dashboard', 'build.ts')], {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`dashboard build failed (exit ${r.status})`);
}

export async function startService(o: StackOptions, s: PipelineService): Promise<void> {
  const { run, logs } = dirs(o);
  const pidFile = join(run, `${s.name}.pid`);
  const logFile = join(logs, `${s.name}.log`);
  if (readPid(pidFile) === undefined) {
    o.log(`${s.name}: starting (log ${logFile})`);
    // The parent's env passes through (overrides such as LOG_LEVEL); the service's own settings win.
    spawnDetached(process.execPath, [join(ROOT, s.script)], logFile, pidFile, ROOT, {
      ...SERVICE_PROCESS_ENV,
      ...process.env,
      ...s.env,
    });
  }
  await waitFor(
    s.name,
    async () => {
      if (readPid(pidFile) === undefined) throw new Error(`${s.name}: process exited; see ${logFile}`);
      return httpOk(s.readyUrl);
    },
    60_000,
    logFile,
  );
  o.log(`${s.name}: ready (${s.readyUrl.replace(/\/readyz$/, '')})`);
}

export async function pipelineUp(
  o: StackOptions,
  env: Readonly<Record<string, string | undefined>>,
): Promise<PipelineService[]> {
  const e = await up(o);
  migrate(e, env, o.log);
  buildDashboard(o.log);
  const services = pipelineServices(e, env);
  for (const s of services) await startService(o, s);
  return services;
}

export async function pipelineDown(o: StackOptions): Promise<void> {
  const { run } = dirs(o);
  // Intake first, so nothing new arrives while the consumer drains.
  for (const name of ['collector', 'query', 'refresher', 'consumer'])
    await stopPid(name, join(run, `${name}.pid`), o.log);
  await stackDown(o);
}

export function servicePid(o: StackOptions, name: string): number | undefined {
  return readPid(join(dirs(o).run, `${name}.pid`));
}
