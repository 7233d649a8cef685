/**
 * Helpers for the consumer's integration and fault tests: run the real consumer
 * (`node services/consumer/main.ts`) as a child process, so SIGKILL is a real kill -9; read the
 * results back from ClickHouse and Kafka. Test records are in fixtures.ts, producing and lag in
 * kafka-topics.ts (unit tests and bench/ import those without this process harness).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { DLQ_HEADERS } from '../../services/consumer/dlq.ts';
import type { ClickHouseClient } from '../../services/lib/clickhouse.ts';
import { migrate } from '../../services/lib/datamodel/migrate.ts';
import type { Admin, Kafka } from '../../services/lib/kafka.ts';
import { quoteString } from '../../services/lib/sql.ts';
import { activity, encoded, type RawMessage } from '../fixtures/records.ts';
import type { AckedEvent } from './invariant.ts';
import {
  clickhouseUrl,
  freshDatabase,
  freshTopics,
  kafkaBrokers,
  type TestDatabase,
  type TestTopics,
  uniqueName,
} from './services.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const NODE = `${ROOT}node_modules/.bin/node`;

export async function migrated(client: ClickHouseClient, database: string): Promise<void> {
  await migrate({ client, database });
}

/**
 * Makes ClickHouse refuse, for their content, the activity rows whose user_id starts with `prefix`.
 * The one contract leaves no value the ingest columns themselves refuse, so a test gets a refused
 * row the way an operator's own view would cause one: a materialized view that parses such a row's
 * user_id as a number fails with CANNOT_PARSE_TEXT (code 6), a data error, for those rows only.
 * Named to sort first: 18.16 pushes to a table's views in name order and an insert is not atomic
 * across them, so a later view's refusal would leave the row already written by the earlier ones.
 */
export async function refuseRows(client: ClickHouseClient, prefix: string): Promise<void> {
  await client.command({ query: 'CREATE TABLE IF NOT EXISTS aaa_refused_rows (n UInt8) ENGINE = Null' });
  await client.command({
    query: `CREATE MATERIALIZED VIEW IF NOT EXISTS aaa_refuse_rows TO aaa_refused_rows AS
      SELECT toUInt8(if(substring(ifNull(user_id, ''), 1, ${prefix.length}) = ${quoteString(prefix)}, user_id, '0')) AS n
      FROM ingest_user_activity`,
  });
}

export async function scalar(client: ClickHouseClient, query: string): Promise<number> {
  const rs = await client.query({ query: `SELECT toString((${query})) AS v`, format: 'JSONEachRow' });
  const [row] = await rs.json<{ v: string }>();
  return Number(row?.v ?? Number.NaN);
}

export const distinctEvents = (client: ClickHouseClient): Promise<number> =>
  scalar(client, 'SELECT uniqExact(event_id) FROM fact_user_activity');

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T>,
  done: (v: T) => boolean,
  timeoutMs = 90_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < until) {
    try {
      last = await fn();
      if (done(last)) return last;
    } catch {
      // the service may be down on purpose; keep polling
    }
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}; last value ${JSON.stringify(last)}`);
}

/** A service (consumer, collector) running as a child process, its output kept line by line. */
export interface ServiceProcess {
  readonly child: ChildProcess;
  readonly logs: string[];
  /** The HTTP port it listens on (read from its "Server listening" log line). */
  readonly port: () => Promise<number>;
  readonly exited: Promise<number | null>;
  /** Sum over all label sets of a metric on its /metrics (NaN when absent). */
  readonly metric: (name: string) => Promise<number>;
  /** GET /readyz: the status code and the JSON body (stuck partitions, paused, ...). */
  readonly readyz: () => Promise<{ status: number; body: Record<string, unknown> }>;
}

export type ConsumerProcess = ServiceProcess;

/**
 * Starts `node <script>` with `env` (and PATH, nothing else from this process: config comes only
 * from what the test passes); resolves once a log line contains `ready`. Its log lines are kept in
 * `logs`, out of the test output.
 */
export async function spawnService(
  script: string,
  env: Record<string, string>,
  ready: string,
): Promise<ServiceProcess> {
  const child = spawn(NODE, [script], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: string[] = [];
  let buf = '';
  const onData = (d: Buffer): void => {
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop() ?? '';
    logs.push(...lines);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const port = async (): Promise<number> => {
    const line = await waitFor(
      `${script} HTTP port`,
      async () => logs.find((l) => l.includes('Server listening at http://127.0.0.1:')),
      (l) => l !== undefined,
      30_000,
    );
    return Number(/127\.0\.0\.1:(\d+)/.exec(line ?? '')?.[1]);
  };
  const metric = async (name: string): Promise<number> => {
    const res = await fetch(`http://127.0.0.1:${await port()}/metrics`);
    const text = await res.text();
    let sum = 0;
    let found = false;
    for (const line of text.split('\n')) {
      if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) {
        sum += Number(line.slice(line.lastIndexOf(' ') + 1));
        found = true;
      }
    }
    return found ? sum : Number.NaN;
  };
  const readyz = async (): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(`http://127.0.0.1:${await port()}/readyz`);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  await Promise.race([
    waitFor(`${script} start`, async () => logs.some((l) => l.includes(ready)), Boolean, 60_000),
    exited.then((code) => {
      throw new Error(`${script} exited with ${code} before starting:\n${logs.slice(-20).join('\n')}`);
    }),
  ]);
  return { child, logs, port, exited, metric, readyz };
}

/** Starts the consumer with `env` on a free HTTP port; resolves once it logged "consumer started". */
export function startConsumer(env: Record<string, string>): Promise<ConsumerProcess> {
  return spawnService(
    'services/consumer/main.ts',
    {
      CONSUMER_HTTP_PORT: '0',
      CONSUMER_HTTP_HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      KAFKAJS_NO_PARTITIONER_WARNING: '1',
      ...env,
    },
    '"consumer started"',
  );
}

/** Env for a consumer against `kafkaBrokers`/`clickhouseUrl`, database `database`, the given topics. */
export function consumerEnv(o: {
  kafkaBrokers: string;
  clickhouseUrl: string;
  database: string;
  topic: string;
  dlqTopic: string;
  groupId: string;
  extra?: Record<string, string>;
}): Record<string, string> {
  return {
    KAFKA_BROKERS: o.kafkaBrokers,
    CLICKHOUSE_URL: o.clickhouseUrl,
    CLICKHOUSE_DATABASE: o.database,
    KAFKA_TOPIC: o.topic,
    KAFKA_DLQ_TOPIC: o.dlqTopic,
    KAFKA_GROUP_ID: o.groupId,
    KAFKA_SESSION_TIMEOUT_MS: '10000',
    KAFKA_HEARTBEAT_INTERVAL_MS: '1000',
    ...o.extra,
  };
}

/**
 * One test file's consumer on the shared stack: its own migrated database, an activity topic and a
 * DLQ topic of `partitions` each, an admin client (offsets, lag), one group id, and every consumer
 * process it started, which close() kills before dropping the rest.
 */
export interface ConsumerSetup {
  readonly at: Endpoints;
  readonly db: TestDatabase;
  readonly topics: TestTopics;
  readonly admin: Admin;
  readonly topic: string;
  readonly dlqTopic: string;
  readonly groupId: string;
  /** The consumer's environment; `extra` adds or overrides variables (BATCH_MAX_ROWS, ...). */
  readonly env: (extra?: Record<string, string>) => Record<string, string>;
  /** Starts a consumer with env(extra). */
  readonly start: (extra?: Record<string, string>) => Promise<ConsumerProcess>;
  readonly close: () => Promise<void>;
}

/** Kafka and ClickHouse to run against; the shared stack's unless a test passes its private ones. */
export interface Endpoints {
  readonly kafkaBrokers: string;
  readonly clickhouseUrl: string;
  /** Copies of each topic (3 on a private 3-node cluster); 1 when unset. */
  readonly kafkaReplicationFactor?: number;
}

/**
 * `name` prefixes the database, topics and group (one name per test file). `at` defaults to the
 * shared stack; fault tests that stop or freeze a service pass their private stack.
 */
export async function consumerSetup(
  name: string,
  partitions: number,
  at: Endpoints = { kafkaBrokers: kafkaBrokers().join(','), clickhouseUrl: clickhouseUrl() },
): Promise<ConsumerSetup> {
  const db = await freshDatabase(name, at.clickhouseUrl);
  await migrated(db.client, db.name);
  const rf = at.kafkaReplicationFactor ?? 1;
  const topics = await freshTopics(name.replace(/_/g, '-'), 2, partitions, at.kafkaBrokers.split(','), rf);
  const [topic = '', dlqTopic = ''] = topics.names;
  const admin = topics.kafka.admin();
  await admin.connect();
  const groupId = uniqueName(`${name}_group`);
  const running: ConsumerProcess[] = [];
  const env = (extra: Record<string, string> = {}): Record<string, string> =>
    consumerEnv({
      kafkaBrokers: at.kafkaBrokers,
      clickhouseUrl: at.clickhouseUrl,
      database: db.name,
      topic,
      dlqTopic,
      groupId,
      extra: { KAFKA_REPLICATION_FACTOR: String(rf), ...extra },
    });
  return {
    at,
    db,
    topics,
    admin,
    topic,
    dlqTopic,
    groupId,
    env,
    start: async (extra) => {
      const c = await startConsumer(env(extra));
      running.push(c);
      return c;
    },
    close: async () => {
      for (const c of running) c.child.kill('SIGKILL');
      await admin.disconnect();
      await topics.drop();
      await db.drop();
    },
  };
}

export interface Stream {
  readonly messages: RawMessage[];
  readonly eventIds: ReadonlySet<string>;
  /** Exact distinct users per UTC day (YYYY-MM-DD), and over all days. */
  readonly dau: ReadonlyMap<string, number>;
  readonly users: number;
  /** Every event as the invariant check wants it (./invariant.ts). */
  readonly acked: readonly AckedEvent[];
}

/** `n` activity events of `users` users spread over `days` UTC days ending yesterday. */
export function activityStream(n: number, users: number, days: number, tag = 's'): Stream {
  const today = Math.floor(Date.now() / 86_400_000) * 86_400_000;
  const messages: RawMessage[] = [];
  const eventIds = new Set<string>();
  const perDay = new Map<string, Set<string>>();
  const all = new Set<string>();
  const acked: AckedEvent[] = [];
  for (let i = 0; i < n; i++) {
    const user = `${tag}-u${(i * 7919) % users}`;
    const day = today - (1 + (i % days)) * 86_400_000;
    const ts = day + ((i * 1_000) % 86_400_000);
    const e = activity({ user_id: user, activity_timestamp: ts, feature_name: `f${i % 5}` });
    eventIds.add(e.event_id as string);
    acked.push({ eventId: e.event_id as string, actor: user, timestampMs: ts });
    messages.push(encoded('user_activity', e));
    const d = new Date(day).toISOString().slice(0, 10);
    const set = perDay.get(d) ?? new Set<string>();
    perDay.set(d, set);
    set.add(user);
    all.add(user);
  }
  const dau = new Map([...perDay].map(([d, s]) => [d, s.size] as const).sort());
  return { messages, eventIds, dau, users: all.size, acked };
}

/** Distinct users per UTC day from the rollups (what the query API serves) and from the facts. */
export async function activeUsers(
  client: ClickHouseClient,
): Promise<{ rollup: Map<string, number>; facts: Map<string, number>; mauRollup: number }> {
  const q = async (query: string): Promise<Map<string, number>> => {
    const rs = await client.query({ query, format: 'JSONEachRow' });
    const rows = await rs.json<{ d: string; n: string }>();
    return new Map(rows.map((r) => [r.d, Number(r.n)]));
  };
  const rollup = await q(
    'SELECT toString(toDate(hour)) AS d, toString(uniqMerge(users)) AS n FROM rollup_users_hourly_total GROUP BY d ORDER BY d',
  );
  const facts = await q(
    'SELECT toString(toDate(activity_timestamp)) AS d, toString(uniqExact(user_key)) AS n FROM fact_user_activity GROUP BY d ORDER BY d',
  );
  const mauRollup = await scalar(client, 'SELECT uniqMerge(users) FROM rollup_users_hourly_total');
  return { rollup, facts, mauRollup };
}

/**
 * The consumer's inserts into `table` that ClickHouse is executing right now (system.processes).
 * Only meaningful on a ClickHouse no other test writes to (a private stack's): 18.16 does not show
 * a query's database there.
 */
export async function insertsInFlight(
  client: ClickHouseClient,
  table = 'ingest_user_activity',
): Promise<{ query_id: string; elapsed: number; written_rows: number }[]> {
  const rs = await client.query({
    query: `SELECT query_id, elapsed, toString(written_rows) AS written_rows FROM system.processes
            WHERE query LIKE 'INSERT INTO ${table}%'`,
    format: 'JSONEachRow',
  });
  const rows = await rs.json<{ query_id: string; elapsed: number; written_rows: string }>();
  return rows.map((r) => ({ ...r, written_rows: Number(r.written_rows) }));
}

/**
 * Polls system.processes back to back (a round trip is a few ms; an insert of a few thousand rows
 * through the views runs for tens of ms) until an insert into `table` is running; resolves with it.
 */
export async function nextInsertInFlight(
  client: ClickHouseClient,
  timeoutMs = 30_000,
  table = 'ingest_user_activity',
): Promise<{ query_id: string; elapsed: number; written_rows: number; polls: number }> {
  const until = Date.now() + timeoutMs;
  for (let polls = 1; Date.now() < until; polls++) {
    const [insert] = await insertsInFlight(client, table);
    if (insert) return { ...insert, polls };
  }
  throw new Error(`no insert into ${table} seen in ${timeoutMs} ms`);
}

export interface DeadLetterRead {
  readonly reason: string;
  readonly code: string;
  readonly error: string;
  /** Where the message came from. */
  readonly sourcePartition: number;
  readonly sourceOffset: number;
  readonly value: Buffer | null;
}

/** Reads the dead-letter topic from the beginning until `count` letters are there (or times out). */
export async function readDeadLetters(kafka: Kafka, topic: string, count: number): Promise<DeadLetterRead[]> {
  const consumer = kafka.consumer({
    groupId: uniqueName('dlq-reader'),
    sessionTimeout: 10_000,
    heartbeatInterval: 1_000,
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const letters: DeadLetterRead[] = [];
  await consumer.run({
    eachMessage: async ({ message }) => {
      const h = (name: string): string => message.headers?.[name]?.toString() ?? '';
      letters.push({
        reason: h(DLQ_HEADERS.reason),
        code: h(DLQ_HEADERS.errorCode),
        error: h(DLQ_HEADERS.errorMessage),
        sourcePartition: Number(h(DLQ_HEADERS.sourcePartition)),
        sourceOffset: Number(h(DLQ_HEADERS.sourceOffset)),
        value: message.value,
      });
    },
  });
  try {
    await waitFor(
      `${count} dead letters`,
      async () => letters.length,
      (n) => n >= count,
      60_000,
    );
  } finally {
    await consumer.disconnect();
  }
  return letters;
}
