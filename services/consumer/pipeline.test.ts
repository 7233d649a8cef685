import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { activity, codec, encoded } from '../../test/harness/consumer-process.ts';
import type { ClickHouseClient } from '../lib/clickhouse.ts';
import type { BatchScope, PartitionBatch } from '../lib/kafka-consumer.ts';
import type { DeadLetter, DeadLetterQueue } from './dlq.ts';
import { createConsumerMetrics } from './metrics.ts';
import { INGEST_TABLES, Pipeline } from './pipeline.ts';
import { UserContext } from './profiles.ts';
import { Sink } from './sink.ts';

const logger = pino({ level: 'silent' });

/** A ClickHouse whose inserts complete only when the test says so. */
function gatedClickHouse() {
  const inserts: { table: string; rows: number; release: () => void }[] = [];
  const client = {
    insert: ({ table, values }: { table: string; values: unknown[] }) =>
      new Promise<void>((resolve) => inserts.push({ table, rows: values.length, release: resolve })),
  } as unknown as ClickHouseClient;
  return { client, inserts };
}

function setup(limits = { maxRows: 100, maxBytes: 1_000_000, maxAgeMs: 10 }) {
  const ch = gatedClickHouse();
  const letters: DeadLetter[] = [];
  const dlq: DeadLetterQueue = { send: async (l) => void letters.push(...l), close: async () => {} };
  const pipeline = new Pipeline({
    codec,
    sink: new Sink({
      client: ch.client,
      logger,
      retry: { initialMs: 1, maxMs: 1 },
      signal: new AbortController().signal,
      events: { onInsert: () => {}, onError: () => {}, onRetrying: () => {}, onRecovered: () => {} },
    }),
    dlq,
    context: new UserContext({
      lookup: { identities: async () => new Map(), profiles: async () => new Map() },
      maxEntries: 100,
      negativeTtlMs: 1_000,
    }),
    limits,
    logger,
    metrics: createConsumerMetrics(),
    heartbeatEveryMs: 5,
    retryLookup: (_what, fn) => fn(),
  });
  return { pipeline, ch, letters };
}

function partitionBatch(
  values: ({ value: Buffer | null; headers: Record<string, string> } | 'poison')[],
): PartitionBatch {
  return {
    topic: 't',
    partition: 0,
    highWatermark: String(values.length),
    messages: values.map((v, i) => ({
      offset: String(i),
      key: null,
      timestamp: String(Date.now()),
      ...(v === 'poison' ? { value: Buffer.from([0xff]), headers: { schema: 'user_activity.v1' } } : v),
    })),
  };
}

function scope(opts: { failHeartbeat?: boolean } = {}) {
  const commits: string[] = [];
  const s: BatchScope = {
    heartbeat: async () => {
      if (opts.failHeartbeat) throw new Error('rebalancing');
    },
    commit: async (next) => {
      commits.push(next);
      return true;
    },
  };
  return { s, commits };
}

const good = () => encoded('user_activity', activity({ user_id: 'u' }));
const until = async (cond: () => boolean): Promise<void> => {
  while (!cond()) await new Promise((r) => setTimeout(r, 1));
};

describe('Pipeline offset invariant', () => {
  it('commits nothing before ClickHouse acknowledged, then in ascending order per written batch', async () => {
    const { pipeline, ch, letters } = setup({ maxRows: 2, maxBytes: 1_000_000, maxAgeMs: 10 });
    const { s, commits } = scope();
    const done = pipeline.handle(partitionBatch([good(), 'poison', good(), good(), good(), 'poison']), s);

    await until(() => ch.inserts.length === 1);
    expect(letters.map((l) => l.message.offset)).toEqual(['1', '5']);
    expect(commits).toEqual([]);
    expect(ch.inserts[0]).toMatchObject({ table: INGEST_TABLES.activity, rows: 2 });
    ch.inserts[0]?.release();
    await until(() => ch.inserts.length === 2);
    // Offsets 0..2 (rows 0, 2 and the poison between) are durable; 3..5 are not yet.
    expect(commits).toEqual(['3']);
    expect(ch.inserts[1]?.rows).toBe(2);
    ch.inserts[1]?.release();
    await done;
    // The last commit covers the trailing poison message too.
    expect(commits).toEqual(['3', '6']);
  });

  it('commits a batch of poison messages once they are in the DLQ', async () => {
    const { pipeline, ch, letters } = setup();
    const { s, commits } = scope();
    await pipeline.handle(partitionBatch(['poison', 'poison']), s);
    expect(letters).toHaveLength(2);
    expect(ch.inserts).toHaveLength(0);
    expect(commits).toEqual(['2']);
  });

  it('abandons without committing when a heartbeat reports a rebalance during the wait', async () => {
    const { pipeline, ch } = setup({ maxRows: 100, maxBytes: 1_000_000, maxAgeMs: 5 });
    const { s, commits } = scope({ failHeartbeat: true });
    const done = pipeline.handle(partitionBatch([good(), good()]), s);
    await expect(done).rejects.toThrow('rebalancing');
    await until(() => ch.inserts.length === 1);
    ch.inserts[0]?.release();
    await pipeline.idle();
    expect(commits).toEqual([]);
  });

  it('drain() flushes at once instead of waiting for the interval', async () => {
    const { pipeline, ch } = setup({ maxRows: 100, maxBytes: 1_000_000, maxAgeMs: 60_000 });
    const { s, commits } = scope();
    const done = pipeline.handle(partitionBatch([good()]), s);
    await new Promise((r) => setTimeout(r, 20));
    expect(ch.inserts).toHaveLength(0);
    pipeline.drain();
    await until(() => ch.inserts.length === 1);
    ch.inserts[0]?.release();
    await done;
    expect(commits).toEqual(['1']);
  });
});
