import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { activity, encoded } from '../../test/fixtures/records.ts';
import { readConfig } from '../lib/config.ts';
import type { BatchHandler, BatchScope, GroupConsumer } from '../lib/kafka-consumer.ts';
import { consumerSpec } from './config.ts';
import { buildConsumer, type ConsumerBoundary } from './consumer.ts';
import type { DeadLetter } from './dlq.ts';
import { INGEST_TABLES } from './schema.ts';

const logger = pino({ level: 'silent' });
const config = readConfig(consumerSpec, {
  CLICKHOUSE_RETRY_INITIAL_MS: '1',
  CLICKHOUSE_RETRY_MAX_MS: '2',
  FLUSH_INTERVAL_MS: '0',
  LAG_REFRESH_INTERVAL_MS: '60000',
});

/** A boundary in memory: a group consumer the test drives, a ClickHouse whose failures it sets. */
function fakeBoundary(
  o: { schemaProblemsAtStart?: number; failingInserts?: number; migrate?: boolean } = {},
) {
  const calls: string[] = [];
  const inserted: { table: string; rows: number }[] = [];
  const letters: DeadLetter[] = [];
  let schemaProblemsLeft = o.schemaProblemsAtStart ?? 0;
  let failingInserts = o.failingInserts ?? 0;
  let handler: BatchHandler | undefined;
  let paused = false;
  const group: GroupConsumer = {
    start: async (h) => {
      calls.push('consume');
      handler = h;
    },
    pause: () => {
      paused = true;
    },
    resume: () => {
      paused = false;
    },
    isPaused: () => paused,
    assignment: () => [0],
    stop: async () => void calls.push('leave group'),
  };
  const boundary: ConsumerBoundary = {
    insert: async (table, _columns, rows) => {
      if (failingInserts > 0) {
        failingInserts--;
        throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      }
      inserted.push({ table, rows: rows.length });
    },
    schemaProblems: async () => {
      calls.push('schema check');
      if (schemaProblemsLeft === 0) return [];
      schemaProblemsLeft--;
      return ['ingest_user_activity.kind is missing (expected String)'];
    },
    lookup: {
      identities: async () => new Map(),
      profiles: async () => new Map(),
      knownAll: async () => 0,
      knownSince: async () => 0,
      writtenActors: async () => new Map(),
    },
    migrate: async () => void calls.push('migrate'),
    prepareTopics: async () => void calls.push('topics'),
    offsets: async () => [],
    groupConsumer: () => group,
    deadLetterQueue: async () => ({
      send: async (l) => void letters.push(...l),
      close: async () => void calls.push('dlq closed'),
    }),
    close: async () => void calls.push('clients closed'),
  };
  const deliver = async (values: Buffer[]): Promise<string[]> => {
    if (handler === undefined) throw new Error('not consuming');
    const commits: string[] = [];
    const scope: BatchScope = { heartbeat: async () => {}, commit: async (next) => !!commits.push(next) };
    await handler(
      {
        topic: 't',
        partition: 0,
        highWatermark: String(values.length),
        messages: values.map((value, i) => ({
          offset: String(i),
          key: null,
          value,
          headers: encoded('user_activity', activity({})).headers,
          timestamp: String(Date.now()),
        })),
      },
      scope,
    );
    return commits;
  };
  return { boundary, calls, inserted, letters, deliver, isPaused: () => paused };
}

const event = (): Buffer => encoded('user_activity', activity({ user_id: 'u1' })).value ?? Buffer.alloc(0);

describe('buildConsumer', () => {
  it('waits for the schema, prepares topics, then writes a batch and commits after it', async () => {
    const f = fakeBoundary({ schemaProblemsAtStart: 2 });
    const consumer = buildConsumer({ config, logger, boundary: f.boundary });
    expect(consumer.readiness()).toMatchObject({ ok: false, reason: 'starting' });
    await consumer.start();
    expect(f.calls).toEqual(['schema check', 'schema check', 'schema check', 'topics', 'consume']);
    expect(consumer.readiness()).toMatchObject({ ok: true, detail: { partitions: [0], paused: false } });

    const commits = await f.deliver([event(), event(), Buffer.from([0xff])]);
    expect(f.inserted).toEqual([{ table: INGEST_TABLES.activity, rows: 2 }]);
    expect(f.letters.map((l) => l.reason)).toEqual(['undecodable']);
    expect(commits).toEqual(['3']);

    for (const step of consumer.stopSteps) await step.run();
    expect(f.calls.slice(-3)).toEqual(['leave group', 'dlq closed', 'clients closed']);
    expect(consumer.readiness().ok).toBe(false);
  });

  it('runs the migrations first when MIGRATE_ON_START is set', async () => {
    const f = fakeBoundary();
    await buildConsumer({
      config: { ...config, MIGRATE_ON_START: true },
      logger,
      boundary: f.boundary,
    }).start();
    expect(f.calls.slice(0, 2)).toEqual(['migrate', 'schema check']);
  });

  it('pauses fetching while ClickHouse refuses writes, and commits only once the write went through', async () => {
    const f = fakeBoundary({ failingInserts: 3 });
    const consumer = buildConsumer({ config, logger, boundary: f.boundary });
    await consumer.start();
    const pausedDuring: boolean[] = [];
    const metricsText = () => consumer.metrics.registry.getSingleMetricAsString('consumer_fetch_paused');
    const watching = setInterval(() => pausedDuring.push(f.isPaused()), 0);
    const commits = await f.deliver([event()]);
    clearInterval(watching);
    expect(commits).toEqual(['1']);
    expect(f.inserted).toHaveLength(1);
    expect(pausedDuring).toContain(true);
    expect(f.isPaused()).toBe(false);
    expect(await metricsText()).toMatch(/consumer_fetch_paused\{[^}]*\} 0/);
  });

  it('reports a fatal Kafka error as unhealthy and hands it to the caller', () => {
    let onFatal: ((err: Error) => void) | undefined;
    const f = fakeBoundary();
    const fatal: Error[] = [];
    const consumer = buildConsumer({
      config,
      logger,
      boundary: {
        ...f.boundary,
        groupConsumer: (hooks) => {
          onFatal = hooks.onFatal;
          return f.boundary.groupConsumer(hooks);
        },
      },
      onFatal: (err) => fatal.push(err),
    });
    expect(consumer.health()).toEqual({ ok: true });
    onFatal?.(new Error('group coordinator gone'));
    expect(consumer.health()).toEqual({ ok: false, reason: 'group coordinator gone' });
    expect(fatal.map((e) => e.message)).toEqual(['group coordinator gone']);
  });
});
