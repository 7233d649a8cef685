/**
 * buildConsumer(deps): the consumer's wiring (pipeline, sink, user context, partition progress,
 * backpressure, lag reading, readiness) over a boundary of Kafka and ClickHouse operations, reading
 * no environment. main.ts passes connect(config)'s real boundary; a test passes the real one
 * against its own topics and database, or a fake.
 */
import { AvroCodec } from '../lib/avro.ts';
import { createClickHouse, type InsertRows, rowInserter } from '../lib/clickhouse.ts';
import { migrate } from '../lib/datamodel/migrate.ts';
import { createKafka, ensureTopics, groupOffsets, type PartitionOffsets } from '../lib/kafka.ts';
import { createGroupConsumer, type GroupConsumer } from '../lib/kafka-consumer.ts';
import type { Logger } from '../lib/logger.ts';
import type { CheckResult } from '../lib/ops-http.ts';
import type { ConsumerConfig } from './config.ts';
import type { PoisonReason } from './decode.ts';
import { createDeadLetterQueue, type DeadLetterQueue } from './dlq.ts';
import { clickhouseLookup } from './lookups.ts';
import { type ConsumerMetrics, createConsumerMetrics } from './metrics.ts';
import { Pipeline } from './pipeline.ts';
import { type ProfileLookup, UserContext } from './profiles.ts';
import { PartitionProgress } from './progress.ts';
import { retrier } from './retry.ts';
import { ingestColumns, schemaMismatch, schemaProblems } from './schema.ts';
import { type RetryPolicy, Sink } from './sink.ts';

/** Everything the consumer does to Kafka and ClickHouse. */
export interface ConsumerBoundary {
  readonly insert: InsertRows;
  /** Problems of the ingest tables (all, or `tables`) against the rows the consumer builds. */
  readonly schemaProblems: (tables?: readonly string[]) => Promise<readonly string[]>;
  readonly lookup: ProfileLookup;
  /** Creates the database and applies the migrations (MIGRATE_ON_START). */
  readonly migrate: () => Promise<void>;
  /** Creates the activity and dead-letter topics if they do not exist. */
  readonly prepareTopics: () => Promise<void>;
  /** The group's committed offset and the high watermark per partition. */
  readonly offsets: () => Promise<readonly PartitionOffsets[]>;
  readonly groupConsumer: (hooks: {
    readonly onAssignment: (partitions: readonly number[]) => void;
    readonly onFatal: (err: Error) => void;
  }) => GroupConsumer;
  readonly deadLetterQueue: (
    onSent: (reason: PoisonReason, count: number) => void,
  ) => Promise<DeadLetterQueue>;
  /** Closes the clients (after the group consumer stopped and the dead-letter producer closed). */
  readonly close: () => Promise<void>;
}

/** The real boundary: kafkajs and @clickhouse/client through services/lib. */
export function connect(c: ConsumerConfig, logger: Logger): ConsumerBoundary {
  const kafka = createKafka({ brokers: c.KAFKA_BROKERS, clientId: c.KAFKA_CLIENT_ID, logger });
  const clickhouse = createClickHouse({
    url: c.CLICKHOUSE_URL,
    database: c.CLICKHOUSE_DATABASE,
    username: c.CLICKHOUSE_USER,
    password: c.CLICKHOUSE_PASSWORD,
    requestTimeoutMs: c.CLICKHOUSE_REQUEST_TIMEOUT_MS,
    application: 'activity-consumer',
    logger,
  });
  const admin = kafka.admin();
  let adminConnected: Promise<void> | undefined;
  const connectedAdmin = async () => {
    adminConnected ??= admin.connect();
    await adminConnected;
    return admin;
  };
  return {
    insert: rowInserter(clickhouse),
    schemaProblems: (tables) => schemaProblems(clickhouse, tables),
    lookup: clickhouseLookup(clickhouse, { insertVisibleWithinMs: c.CLICKHOUSE_REQUEST_TIMEOUT_MS }),
    migrate: async () => {
      // The database may not exist yet: created through a client without a default database.
      const server = createClickHouse({
        url: c.CLICKHOUSE_URL,
        username: c.CLICKHOUSE_USER,
        password: c.CLICKHOUSE_PASSWORD,
      });
      try {
        await server.command({ query: `CREATE DATABASE IF NOT EXISTS ${c.CLICKHOUSE_DATABASE}` });
      } finally {
        await server.close();
      }
      await migrate({
        client: clickhouse,
        database: c.CLICKHOUSE_DATABASE,
        logger,
        ...(c.CLICKHOUSE_CLUSTER === '' ? {} : { cluster: c.CLICKHOUSE_CLUSTER }),
      });
    },
    prepareTopics: async () =>
      ensureTopics(await connectedAdmin(), [
        {
          topic: c.KAFKA_TOPIC,
          partitions: c.KAFKA_TOPIC_PARTITIONS,
          replicationFactor: c.KAFKA_REPLICATION_FACTOR,
        },
        {
          topic: c.KAFKA_DLQ_TOPIC,
          partitions: c.KAFKA_TOPIC_PARTITIONS,
          replicationFactor: c.KAFKA_REPLICATION_FACTOR,
        },
      ]),
    offsets: async () => groupOffsets(await connectedAdmin(), c.KAFKA_GROUP_ID, c.KAFKA_TOPIC),
    groupConsumer: (hooks) =>
      createGroupConsumer({
        kafka,
        groupId: c.KAFKA_GROUP_ID,
        topic: c.KAFKA_TOPIC,
        logger,
        sessionTimeoutMs: c.KAFKA_SESSION_TIMEOUT_MS,
        heartbeatIntervalMs: c.KAFKA_HEARTBEAT_INTERVAL_MS,
        maxWaitTimeMs: c.FLUSH_INTERVAL_MS,
        minBytes: 1,
        maxBytes: c.FETCH_MAX_BYTES,
        concurrency: c.PARTITIONS_CONCURRENCY,
        ...hooks,
      }),
    deadLetterQueue: (onSent) => createDeadLetterQueue({ kafka, topic: c.KAFKA_DLQ_TOPIC, logger, onSent }),
    close: async () => {
      if (adminConnected !== undefined) await admin.disconnect();
      await clickhouse.close();
    },
  };
}

export interface ConsumerDeps {
  readonly config: ConsumerConfig;
  readonly logger: Logger;
  readonly boundary: ConsumerBoundary;
  readonly metrics?: ConsumerMetrics;
  /** The Kafka consumer stopped for good (main.ts shuts the process down). */
  readonly onFatal?: (err: Error) => void;
}

export interface Consumer {
  readonly metrics: ConsumerMetrics;
  /** Migrations (if configured), the schema wait, topics, then consuming; resolves once in the group. */
  readonly start: () => Promise<void>;
  readonly health: () => CheckResult;
  readonly readiness: () => CheckResult;
  /** Shutdown steps in order: flush and leave the group, then close the DLQ producer and the clients. */
  readonly stopSteps: ReadonlyArray<{ readonly name: string; readonly run: () => Promise<void> }>;
}

export function buildConsumer(deps: ConsumerDeps): Consumer {
  const { config: c, logger, boundary } = deps;
  const metrics = deps.metrics ?? createConsumerMetrics();
  const abort = new AbortController();
  const retry: RetryPolicy = { initialMs: c.CLICKHOUSE_RETRY_INITIAL_MS, maxMs: c.CLICKHOUSE_RETRY_MAX_MS };
  const retrying = retrier(logger, retry, abort.signal);
  let ready = false;
  let stopping = false;
  // Dead-letter sends being retried right now: while any is, the partitions they hold cannot commit.
  let deadLetterSendsFailing = 0;
  let fatal: Error | undefined;
  // Built once ClickHouse and Kafka answer; shutdown and the HTTP port may run before that.
  let pipeline: Pipeline | undefined;
  let dlq: DeadLetterQueue | undefined;
  let lagTimer: NodeJS.Timeout | undefined;

  const timed =
    <A extends unknown[], R>(kind: string, f: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      metrics.lookups.inc({ kind });
      const end = metrics.lookupSeconds.startTimer({ kind });
      try {
        return await f(...a);
      } finally {
        end();
      }
    };
  // Identity and profile context; its look-ups wait in the pipeline's retry like an insert does.
  const context = new UserContext({
    lookup: {
      identities: timed('identity', boundary.lookup.identities),
      profiles: timed('profile', boundary.lookup.profiles),
      knownAll: timed('known_all', boundary.lookup.knownAll),
      knownSince: timed('known_since', boundary.lookup.knownSince),
      writtenActors: timed('written_actor', boundary.lookup.writtenActors),
    },
    maxEntries: c.CACHE_MAX_ENTRIES,
    maxBytes: c.CACHE_MAX_BYTES,
    negativeTtlMs: c.CACHE_NEGATIVE_TTL_MS,
    refreshIntervalMs: c.CONTEXT_REFRESH_INTERVAL_MS,
  });
  metrics.watchKnownIds(() => context.knownSizes());

  const progress = new PartitionProgress();
  metrics.watchPartitions(() => progress.states());
  // Lag read from Kafka on a timer, not only after commits: a wedged partition commits nothing.
  let refreshing = false;
  const refreshLag = async (): Promise<void> => {
    if (refreshing) return;
    refreshing = true;
    try {
      for (const o of await boundary.offsets()) progress.observe(o.partition, o.high, o.committed);
    } catch (err) {
      logger.warn({ err }, 'reading lag from Kafka failed; stalled time keeps counting');
    } finally {
      refreshing = false;
    }
  };

  const consumer = boundary.groupConsumer({
    onAssignment: (partitions) => {
      progress.assign(partitions);
      context.assigned();
      pipeline?.assigned(partitions);
    },
    onFatal: (err) => {
      fatal = err;
      logger.fatal({ err }, 'Kafka consumer stopped for good; exiting');
      deps.onFatal?.(err);
    },
  });

  // Backpressure: no new fetches while ClickHouse refuses; buffered data stays at about one batch.
  const backpressure = {
    onRetrying: () => {
      consumer.pause();
      metrics.fetchPaused.set(1);
    },
    onRecovered: () => {
      consumer.resume();
      metrics.fetchPaused.set(0);
    },
  };
  const sink = new Sink({
    insert: boundary.insert,
    columnsOf: ingestColumns,
    checkSchema: (table) => boundary.schemaProblems([table]),
    logger,
    retry,
    signal: abort.signal,
    events: {
      onInsert: (table, rows, seconds) => {
        metrics.rowsWritten.inc({ table }, rows);
        metrics.insertSeconds.observe({ table }, seconds);
      },
      onError: (table, code) => metrics.insertErrors.inc({ table, code }),
      onRetrying: (table) => {
        metrics.insertRetries.inc({ table });
        backpressure.onRetrying();
      },
      onRecovered: () => backpressure.onRecovered(),
    },
  });

  const start = async (): Promise<void> => {
    if (c.MIGRATE_ON_START) await retrying('migrations', boundary.migrate);
    await retrying('schema check', async () => {
      const mismatch = schemaMismatch(await boundary.schemaProblems());
      if (mismatch !== undefined) throw mismatch;
    });
    await retrying('topics', boundary.prepareTopics);
    dlq = await boundary.deadLetterQueue((reason, count) => metrics.dlqMessages.inc({ reason }, count));
    pipeline = new Pipeline({
      codec: new AvroCodec(),
      sink,
      dlq,
      context,
      limits: {
        maxRows: c.BATCH_MAX_ROWS,
        maxBytes: c.BATCH_MAX_BYTES,
        maxAgeMs: c.FLUSH_INTERVAL_MS,
        idleAgeMs: c.FLUSH_IDLE_MS,
      },
      logger,
      metrics,
      progress,
      heartbeatEveryMs: Math.max(100, Math.floor(c.KAFKA_HEARTBEAT_INTERVAL_MS / 2)),
      retryLookup: retrier(logger, retry, abort.signal, {
        ...backpressure,
        // A hung or down ClickHouse can show first in the look-up, before any insert fails.
        onAttemptFailed: (code) => metrics.lookupFailures.inc({ code }),
      }),
      retryDeadLetters: retrier(logger, retry, abort.signal, {
        onRetrying: () => {
          deadLetterSendsFailing += 1;
          metrics.dlqSendsFailing.set(deadLetterSendsFailing);
        },
        onRecovered: () => {
          deadLetterSendsFailing -= 1;
          metrics.dlqSendsFailing.set(deadLetterSendsFailing);
        },
      }),
    });
    await consumer.start(pipeline.handle);
    lagTimer = setInterval(() => void refreshLag(), c.LAG_REFRESH_INTERVAL_MS);
    ready = !stopping;
  };

  const readiness = (): CheckResult => {
    const stuck = progress.stuck(c.STUCK_PARTITION_MS);
    const paused = consumer.isPaused();
    const detail = {
      partitions: consumer.assignment(),
      stuck,
      paused,
      deadLetterFailing: deadLetterSendsFailing > 0,
      buffered: pipeline?.buffered(),
    };
    const reason = !ready
      ? 'starting'
      : paused
        ? 'fetching paused: ClickHouse refuses writes or look-ups'
        : deadLetterSendsFailing > 0
          ? 'dead-letter sends failing'
          : stuck.length > 0
            ? 'a partition is stuck'
            : undefined;
    return reason === undefined ? { ok: true, detail } : { ok: false, reason, detail };
  };

  return {
    metrics,
    start,
    health: () => (fatal === undefined ? { ok: true } : { ok: false, reason: fatal.message }),
    readiness,
    stopSteps: [
      {
        // In-flight handlers commit after their flush; nothing unwritten is ever committed, so a
        // forced exit past the deadline only means re-delivery.
        name: 'drain',
        run: async () => {
          stopping = true;
          ready = false;
          clearInterval(lagTimer);
          if (pipeline === undefined) return;
          pipeline.drain();
          await consumer.stop();
          await pipeline.idle();
        },
      },
      { name: 'dlq', run: async () => dlq?.close() },
      {
        name: 'clients',
        run: async () => {
          abort.abort();
          await boundary.close();
        },
      },
    ],
  };
}
