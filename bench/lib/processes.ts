/**
 * Runs a service (or a bench limit server) as a child process of the bench: the same
 * `node <file>.ts` a deployment runs, so the load generator and the service do not share an event
 * loop. Optional `--cpu-prof` writes a V8 CPU profile into `profileDir` when the child exits.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, uniqueName } from '../../deploy/local/private-stack.ts';
import { SERVICE_PROCESS_ENV } from '../../deploy/process-env.ts';
import { type Ctx, freshTopic, migratedDatabase } from './context.ts';
import { WRITE_KEY } from './data.ts';
import { pollUntil } from './measure.ts';

export const ROOT = new URL('../../', import.meta.url).pathname;

export interface Child {
  readonly pid: number;
  readonly name: string;
  /** SIGTERM, wait for exit (SIGKILL after `graceMs`); resolves with the last stderr/stdout lines. */
  readonly stop: (graceMs?: number) => Promise<string>;
  readonly output: () => string;
}

export interface SpawnOptions {
  readonly env: Readonly<Record<string, string>>;
  /** URL that answers 2xx once the process is ready. */
  readonly readyUrl: string;
  readonly profileDir?: string;
  readonly readyTimeoutMs?: number;
}

export async function startNode(name: string, script: string, o: SpawnOptions): Promise<Child> {
  const args = o.profileDir ? ['--cpu-prof', '--cpu-prof-dir', o.profileDir, script] : [script];
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`${name}: could not start`);
  // Keep only the tail: a child under load may log a lot, and the bench must stay bounded.
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-8_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited = child.exitCode !== null;
  child.once('exit', () => {
    exited = true;
  });
  const stop = async (graceMs = 20_000): Promise<string> => {
    if (!exited) {
      const done = once(child, 'exit');
      child.kill('SIGTERM');
      const killed = sleep(graceMs).then(() => {
        if (!exited) child.kill('SIGKILL');
      });
      await Promise.race([done, killed]);
      if (!exited) await done;
    }
    return tail;
  };
  try {
    await pollUntil(
      `${name} ready at ${o.readyUrl}`,
      async () => {
        if (exited) throw new Error(`${name} exited before ready:\n${tail}`);
        try {
          return (await fetch(o.readyUrl)).ok;
        } catch {
          return false;
        }
      },
      o.readyTimeoutMs ?? 60_000,
      200,
    );
  } catch (err) {
    await stop(2_000);
    throw err;
  }
  return { pid: child.pid, name, stop, output: () => tail };
}

/** The collector as deployed (services/collector/main.ts), on a free port, writing to `topic`. */
export async function startCollector(o: {
  kafkaBrokers: string;
  topic: string;
  profileDir?: string;
  /** Settings on top of the bench's (e.g. GEO_DATABASE to compare the geo databases). */
  env?: Record<string, string>;
}): Promise<Child & { url: string }> {
  const port = await freePort();
  const child = await startNode('collector', 'services/collector/main.ts', {
    readyUrl: `http://127.0.0.1:${port}/readyz`,
    ...(o.profileDir ? { profileDir: o.profileDir } : {}),
    env: {
      ...SERVICE_PROCESS_ENV,
      PORT: String(port),
      HOST: '127.0.0.1',
      KAFKA_BROKERS: o.kafkaBrokers,
      KAFKA_TOPIC: o.topic,
      WRITE_KEYS: `${WRITE_KEY}:bench`,
      LOG_LEVEL: 'warn',
      // One write key from one address sends all the load; the per-key and per-address limits
      // (defaults 1,000 and 200 req/s) would measure the rate limiter instead of the intake path.
      RATE_LIMIT_MAX: '1000000000',
      RATE_LIMIT_PER_ADDRESS_MAX: '1000000000',
      ...o.env,
    },
  });
  return { ...child, url: `http://127.0.0.1:${port}` };
}

export { freePort };

/** The consumer as deployed (services/consumer/main.ts), on a free port; `url` serves /metrics. */
export async function startConsumer(o: {
  kafkaBrokers: string;
  clickhouseUrl: string;
  database: string;
  topic: string;
  groupId: string;
  profileDir?: string;
  /** Another checkout's consumer (a baseline); default this checkout's. */
  script?: string;
  /** More variables (BATCH_MAX_ROWS, ...). */
  extra?: Readonly<Record<string, string>>;
}): Promise<Child & { url: string }> {
  const port = await freePort();
  const child = await startNode('consumer', o.script ?? 'services/consumer/main.ts', {
    readyUrl: `http://127.0.0.1:${port}/readyz`,
    ...(o.profileDir ? { profileDir: o.profileDir } : {}),
    env: {
      ...SERVICE_PROCESS_ENV,
      KAFKA_BROKERS: o.kafkaBrokers,
      KAFKA_TOPIC: o.topic,
      KAFKA_DLQ_TOPIC: `${o.topic}.dlq`,
      KAFKA_GROUP_ID: o.groupId,
      CLICKHOUSE_URL: o.clickhouseUrl,
      CLICKHOUSE_DATABASE: o.database,
      CONSUMER_HTTP_PORT: String(port),
      CONSUMER_HTTP_HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      ...o.extra,
    },
  });
  return { ...child, url: `http://127.0.0.1:${port}` };
}

/**
 * A fresh database and 6-partition topic with a real collector and consumer on them, and a connected
 * Kafka admin (for broker lag): what the scenarios that drive the whole pipeline start with.
 */
export async function startPipeline(ctx: Ctx, name: string) {
  const db = await migratedDatabase(ctx, name);
  await db.close();
  const topic = await freshTopic(ctx, name, 6);
  const groupId = uniqueName(`bench-${name}`);
  const collector = await startCollector({ kafkaBrokers: ctx.kafkaBrokers, topic });
  const consumer = await startConsumer({
    kafkaBrokers: ctx.kafkaBrokers,
    clickhouseUrl: ctx.clickhouseUrl,
    database: db.name,
    topic,
    groupId,
  });
  const admin = ctx.kafka.admin();
  await admin.connect();
  return { db, topic, groupId, collector, consumer, admin };
}
