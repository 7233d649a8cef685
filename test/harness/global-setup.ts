/**
 * Provides Kafka and ClickHouse to the integration project, from, in order:
 *   1. KAFKA_BROKERS / CLICKHOUSE_URL in the environment (external services; nothing is started);
 *   2. testcontainers, when a Docker engine answers;
 *   3. the local no-Docker stack of deploy/local (started here if it is not already running, and
 *      stopped again at the end only if it was started here).
 * Test files read the endpoints with `inject()` (see ./services.ts).
 */
import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import {
  clickhouseDown,
  endpoints,
  kafkaDown,
  portOpen,
  stackOptions,
  status,
  up,
} from '../../deploy/local/stack.ts';
import { chromiumPath } from './chromium.ts';
import { startContainers } from './containers.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string;
    clickhouseUrl: string;
    /** How the services were provided: env, containers or local. */
    servicesMode: string;
  }
}

const log = (line: string): void => {
  process.stderr.write(`[harness] ${line}\n`);
};

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const env = process.env;
  await installChromium();
  if (env.KAFKA_BROKERS && env.CLICKHOUSE_URL) {
    await assertReachable(env.KAFKA_BROKERS, env.CLICKHOUSE_URL);
    project.provide('kafkaBrokers', env.KAFKA_BROKERS);
    project.provide('clickhouseUrl', env.CLICKHOUSE_URL);
    project.provide('servicesMode', 'env');
    return async () => {};
  }

  const containers = env.TEST_NO_CONTAINERS ? undefined : await startContainers(log);
  if (containers) {
    project.provide('kafkaBrokers', env.KAFKA_BROKERS ?? containers.kafkaBrokers);
    project.provide('clickhouseUrl', env.CLICKHOUSE_URL ?? containers.clickhouseUrl);
    project.provide('servicesMode', 'containers');
    return containers.stop;
  }

  const o = stackOptions(env, log);
  const before = await status(o);
  const wasRunning = (name: string): boolean =>
    before.some((s) => s.name === name && s.pid !== undefined && s.ready);
  await up(o);
  const e = endpoints(o);
  project.provide('kafkaBrokers', e.kafkaBrokers);
  project.provide('clickhouseUrl', e.clickhouseUrl);
  project.provide('servicesMode', 'local');
  return async () => {
    // Leave a developer's running stack alone; stop only what this run started.
    if (!wasRunning('kafka')) await kafkaDown(o);
    if (!wasRunning('clickhouse')) await clickhouseDown(o);
  };
}

/** External services that do not answer fail the run at once with one clear line, not per test. */
async function assertReachable(kafkaBrokers: string, clickhouseUrl: string): Promise<void> {
  const problems: string[] = [];
  const [host = '127.0.0.1', port = '9092'] = (kafkaBrokers.split(',')[0] ?? '').split(':');
  if (!(await portOpen(Number(port), host)))
    problems.push(`Kafka at KAFKA_BROKERS=${kafkaBrokers} does not accept connections`);
  const ch = await fetch(`${clickhouseUrl}/ping`, { signal: AbortSignal.timeout(3000) }).then(
    (r) => r.ok,
    () => false,
  );
  if (!ch) problems.push(`ClickHouse at CLICKHOUSE_URL=${clickhouseUrl} does not answer /ping`);
  if (problems.length > 0) throw new Error(problems.join('; '));
}

/**
 * Browser tests in different workers would each run apt-get at once on a fresh machine and trip over
 * dpkg's lock, so Chromium is installed here, once, before any worker starts. A failure is left to
 * the browser tests to report; the other tests do not need Chromium.
 */
async function installChromium(): Promise<void> {
  try {
    await chromiumPath(log);
  } catch (err) {
    log(`chromium unavailable: ${err instanceof Error ? err.message : String(err)}`);
  }
}
