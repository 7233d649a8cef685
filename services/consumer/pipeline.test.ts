import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { activity, codec, encoded } from '../../test/fixtures/records.ts';
import type { InsertRows } from '../lib/clickhouse.ts';
import type { BatchScope, PartitionBatch } from '../lib/kafka-consumer.ts';
import type { BatchLimits } from './batcher.ts';
import type { DeadLetter, DeadLetterQueue } from './dlq.ts';
import { createConsumerMetrics } from './metrics.ts';
import { CLOCK_MARGIN_MS, Pipeline } from './pipeline.ts';
import { UserContext } from './profiles.ts';
import { PartitionProgress } from './progress.ts';
import { retrier } from './retry.ts';
import { INGEST_TABLES, ingestColumns } from './schema.ts';
import { Sink } from './sink.ts';

const logger = pino({ level: 'silent' });

/** A ClickHouse whose inserts complete only when the test says so. */
function gatedClickHouse() {
  const inserts: { table: string; rows: number; release: () => void }[] = [];
  const ch = {
    inserts,
    insert: ((table, _columns, values) =>
      new Promise<void>((resolve) =>
        inserts.push({ table, rows: values.length, release: resolve }),
      )) as InsertRows,
  };
  return ch;
}

interface SetupOptions {
  /** Dead-letter sends that fail (Kafka refusing) before they go through. */
  readonly dlqFailures?: number;
  /** What every profile look-up throws. */
  readonly lookupError?: Error;
  /** anonymous id -> user id, as identity_map holds them. */
  readonly links?: Readonly<Record<string, string>>;
  /** event id -> actor, as the facts hold them (written before). */
  readonly facts?: Readonly<Record<string, string>>;
}

function setup(
  limits: BatchLimits = { maxRows: 100, maxBytes: 1_000_000, maxAgeMs: 10 },
  o: SetupOptions = {},
) {
  const ch = gatedClickHouse();
  const letters: DeadLetter[] = [];
  let dlqFailures = o.dlqFailures ?? 0;
  const dlqCalls = { attempts: 0 };
  const dlq: DeadLetterQueue = {
    send: async (l) => {
      dlqCalls.attempts++;
      if (dlqFailures > 0) {
        dlqFailures--;
        throw new Error('KafkaJSNumberOfRetriesExceeded');
      }
      letters.push(...l);
    },
    close: async () => {},
  };
  // What main.ts does with these hooks: unready while a dead-letter send keeps failing.
  const dlqState = { failing: 0, everFailed: false };
  const metrics = createConsumerMetrics();
  const lookups = { calls: 0 };
  /** The event ids of every re-delivery look-up, in order. */
  const written: string[][] = [];
  const found = <V>(ids: readonly string[], from: Readonly<Record<string, V>> | undefined) =>
    new Map(
      ids.flatMap((id) => {
        const v = from?.[id];
        return v === undefined ? [] : [[id, v] as const];
      }),
    );
  const decoded = { messages: 0 };
  const countingCodec: typeof codec = Object.create(codec, {
    decode: {
      value: (...args: Parameters<typeof codec.decode>) => {
        decoded.messages++;
        return codec.decode(...args);
      },
    },
  });
  const pipeline = new Pipeline({
    codec: countingCodec,
    sink: new Sink({
      insert: (table, columns, rows) => ch.insert(table, columns, rows),
      columnsOf: ingestColumns,
      checkSchema: async () => [],
      logger,
      retry: { initialMs: 1, maxMs: 1 },
      signal: new AbortController().signal,
      events: { onInsert: () => {}, onError: () => {}, onRetrying: () => {}, onRecovered: () => {} },
    }),
    dlq,
    context: new UserContext({
      lookup: {
        // The first look-up of a batch (the full read of the known ids) fails as configured.
        knownAll: async (sink) => {
          lookups.calls++;
          if (o.lookupError) throw o.lookupError;
          for (const id of Object.keys(o.links ?? {})) sink.link(id);
          return 0;
        },
        knownSince: async () => 0,
        identities: async (ids) => found(ids, o.links),
        profiles: async () => new Map(),
        writtenActors: async (probes) => {
          written.push(probes.map((p) => p.eventId));
          return found(
            probes.map((p) => p.eventId),
            o.facts,
          );
        },
      },
      maxEntries: 100,
      maxBytes: 1_000_000,
      negativeTtlMs: 1_000,
      refreshIntervalMs: 1_000,
    }),
    limits,
    logger,
    metrics,
    progress: new PartitionProgress(),
    heartbeatEveryMs: 5,
    retryLookup: retrier(logger, { initialMs: 1, maxMs: 2 }, new AbortController().signal),
    retryDeadLetters: retrier(logger, { initialMs: 1, maxMs: 2 }, new AbortController().signal, {
      onRetrying: () => {
        dlqState.failing++;
        dlqState.everFailed = true;
      },
      onRecovered: () => void dlqState.failing--,
    }),
  });
  return { pipeline, ch, letters, dlqCalls, dlqState, metrics, lookups, decoded, written };
}

function partitionBatch(
  values: ({ value: Buffer | null; headers: Record<string, string> } | 'poison')[],
  partition = 0,
): PartitionBatch {
  return {
    topic: 't',
    partition,
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
    // Batches of two messages: [0, poison 1], [2, 3], [4, poison 5].
    const done = pipeline.handle(partitionBatch([good(), 'poison', good(), good(), good(), 'poison']), s);

    await until(() => ch.inserts.length === 1);
    // A poison message is dead-lettered when its batch is prepared, before that batch is written.
    expect(letters.map((l) => l.message.offset)).toEqual(['1']);
    expect(commits).toEqual([]);
    expect(ch.inserts[0]).toMatchObject({ table: INGEST_TABLES.activity, rows: 1 });
    ch.inserts[0]?.release();
    await until(() => ch.inserts.length === 2);
    // Offsets 0..1 (row 0 and the poison after it) are durable; 2..5 are not yet.
    expect(commits).toEqual(['2']);
    expect(ch.inserts[1]?.rows).toBe(2);
    ch.inserts[1]?.release();
    await until(() => ch.inserts.length === 3);
    expect(letters.map((l) => l.message.offset)).toEqual(['1', '5']);
    expect(commits).toEqual(['2', '4']);
    ch.inserts[2]?.release();
    await done;
    // The last commit covers the trailing poison message too.
    expect(commits).toEqual(['2', '4', '6']);
  });

  // Regression (issue 15): every message of a fetch was decoded when fetched, and a gzip fetch holds
  // many batches, so their decoded records were most of the consumer's peak heap.
  it('decodes a batch when it is prepared, not the whole fetch when it arrives', async () => {
    const { pipeline, ch, decoded } = setup({ maxRows: 2, maxBytes: 1_000_000, maxAgeMs: 10 });
    const { s } = scope();
    const done = pipeline.handle(partitionBatch([good(), good(), good(), good(), good(), good()]), s);
    await until(() => ch.inserts.length === 1);
    await new Promise((r) => setTimeout(r, 20));
    // Batch 1 is being written and batch 2 is prepared; batch 3 is still Kafka bytes.
    expect(decoded.messages).toBe(4);
    for (let i = 0; i < 3; i += 1) {
      await until(() => ch.inserts.length === i + 1);
      ch.inserts[i]?.release();
    }
    await done;
    expect(decoded.messages).toBe(6);
  });

  it('prepares the next batch while one is written, one ahead at most, and writes in order', async () => {
    const { pipeline, ch, metrics } = setup({ maxRows: 2, maxBytes: 1_000_000, maxAgeMs: 10 });
    const { s, commits } = scope();
    const prepared = async () => (await metrics.flushes.get()).values.reduce((n, v) => n + v.value, 0);
    const done = pipeline.handle(partitionBatch([good(), good(), good(), good(), good(), good()]), s);

    await until(() => ch.inserts.length === 1);
    // Batch 2 is taken and built while batch 1's insert is pending; batch 3 waits its turn.
    await new Promise((r) => setTimeout(r, 20));
    expect(await prepared()).toBe(2);
    expect(ch.inserts).toHaveLength(1);
    expect(commits).toEqual([]);
    ch.inserts[0]?.release();
    await until(() => ch.inserts.length === 2);
    expect(commits).toEqual(['2']);
    expect(await prepared()).toBe(3);
    ch.inserts[1]?.release();
    await until(() => ch.inserts.length === 3);
    ch.inserts[2]?.release();
    await done;
    expect(commits).toEqual(['2', '4', '6']);
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

describe('Pipeline flush timing', () => {
  it('flushes a fetch that reached the end of its partition at the idle age, not the full interval', async () => {
    const { pipeline, ch, metrics } = setup({
      maxRows: 100,
      maxBytes: 1_000_000,
      maxAgeMs: 60_000,
      idleAgeMs: 0,
    });
    const { s, commits } = scope();
    const done = pipeline.handle(partitionBatch([good(), good()]), s);
    // Without the caught-up rule this waits the 60 s interval and the test times out.
    await until(() => ch.inserts.length === 1);
    ch.inserts[0]?.release();
    await done;
    expect(commits).toEqual(['2']);
    expect((await metrics.flushes.get()).values).toContainEqual(
      expect.objectContaining({ labels: { reason: 'idle' }, value: 1 }),
    );
  });
});

describe('Pipeline dead-letter sends', () => {
  // Regression: a throw from dlq.send inside a flush stopped every later flush for good while
  // /healthz stayed ok. Now it is retried like an outage and the pipeline moves on once it works.
  it('retries a failing DLQ send of rows ClickHouse refused, then commits and keeps flushing', async () => {
    const { pipeline, ch, letters, dlqCalls, dlqState } = setup(
      { maxRows: 2, maxBytes: 1_000_000, maxAgeMs: 5 },
      { dlqFailures: 3 },
    );
    // Every insert of the first batch is refused for its data: both rows go to the DLQ.
    let refuse = 2;
    ch.insert = (async (_table: string, _columns: readonly string[], values: readonly unknown[]) => {
      if (refuse > 0 && values.length === 1) {
        refuse--;
        throw new Error('Code: 72, e.displayText() = DB::Exception: Cannot parse number');
      }
      if (refuse > 0) throw new Error('Code: 72, e.displayText() = DB::Exception: Cannot parse number');
    }) as InsertRows;
    const { s, commits } = scope();
    await pipeline.handle(partitionBatch([good(), good()]), s);
    expect(dlqCalls.attempts).toBe(4);
    expect(letters.map((l) => [l.message.offset, l.reason, l.code])).toEqual([
      ['0', 'rejected_by_clickhouse', 'CLICKHOUSE_72'],
      ['1', 'rejected_by_clickhouse', 'CLICKHOUSE_72'],
    ]);
    expect(commits).toEqual(['2']);
    expect(dlqState).toEqual({ failing: 0, everFailed: true });

    // Later batches are still flushed and committed (two batches at maxRows 2).
    const { s: s2, commits: commits2 } = scope();
    await pipeline.handle(partitionBatch([good(), good(), good()]), s2);
    expect(commits2).toEqual(['2', '3']);
  });

  it('reports the send as failing while it is retried (what makes /readyz 503)', async () => {
    const { pipeline, dlqState, letters } = setup(undefined, { dlqFailures: 1_000_000 });
    const { s, commits } = scope();
    void pipeline.handle(partitionBatch(['poison']), s).catch(() => {});
    await until(() => dlqState.failing === 1);
    await new Promise((r) => setTimeout(r, 30));
    expect(dlqState.failing).toBe(1);
    expect(letters).toEqual([]);
    expect(commits).toEqual([]);
  });

  it('retries a failing DLQ send of poison messages before committing them', async () => {
    const { pipeline, letters, dlqCalls } = setup(undefined, { dlqFailures: 2 });
    const { s, commits } = scope();
    await pipeline.handle(partitionBatch(['poison', 'poison']), s);
    expect(dlqCalls.attempts).toBe(3);
    expect(letters).toHaveLength(2);
    expect(commits).toEqual(['2']);
  });
});

describe('Pipeline look-ups', () => {
  // Regression: a look-up ClickHouse refused for good (code 62, query too large) was retried
  // forever with fetching paused.
  it('writes the batch without its profile when ClickHouse refuses the look-up, and counts it', async () => {
    const { pipeline, ch, metrics, lookups } = setup(undefined, {
      lookupError: new Error('Code: 62, e.displayText() = DB::Exception: Max query size exceeded'),
    });
    const { s, commits } = scope();
    const done = pipeline.handle(partitionBatch([good(), good()]), s);
    await until(() => ch.inserts.length === 1);
    ch.inserts[0]?.release();
    await done;
    expect(lookups.calls).toBe(1);
    expect(commits).toEqual(['2']);
    expect(await metrics.registry.getSingleMetricAsString('consumer_profile_lookups_skipped_total')).toMatch(
      /consumer_profile_lookups_skipped_total\{code="62",service="consumer"\} 1/,
    );
  });

  it('retries a look-up while ClickHouse is unavailable', async () => {
    const { pipeline, ch, lookups } = setup(undefined, {
      lookupError: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
    });
    const { s } = scope();
    void pipeline.handle(partitionBatch([good()]), s).catch(() => {});
    await until(() => lookups.calls >= 3);
    expect(ch.inserts).toHaveLength(0);
  });
});

describe('Pipeline re-delivery check', () => {
  /** Runs a handler to its commits, acknowledging every insert as it comes. */
  async function written(ch: ReturnType<typeof gatedClickHouse>, done: Promise<void>): Promise<void> {
    let settled = false;
    done.then(
      () => {
        settled = true;
      },
      () => {
        settled = true;
      },
    );
    let released = 0;
    while (!settled) {
      while (released < ch.inserts.length) ch.inserts[released++]?.release();
      await new Promise((r) => setTimeout(r, 1));
    }
    await done;
  }

  // Event ids must be UUIDs (decode.ts): a readable name each, as the last digits of one.
  const NAMES = ['p0-0', 'p0-1', 'p0-2', 'p0-3', 'p1-0', 'p1-1', 'p1-2', 'n-0', 'n-1', 'x-0', 'x-1'];
  const id = (name: string): string =>
    `00000000-0000-4000-8000-${String(NAMES.indexOf(name)).padStart(12, '0')}`;
  const anon = (eventId: string, receivedAt = Date.now()) =>
    encoded(
      'user_activity',
      activity({ event_id: eventId, anonymous_id: 'a1', user_id: null, received_at: receivedAt }),
    );

  it("checks a partition's events after an assignment until a batch finds none of them written", async () => {
    const {
      pipeline,
      ch,
      written: lookedUp,
      metrics,
    } = setup(
      { maxRows: 100, maxBytes: 1_000_000, maxAgeMs: 5 },
      { links: { a1: 'u1' }, facts: { [id('p0-0')]: 'anon:a1', [id('p0-1')]: 'anon:a1' } },
    );
    pipeline.assigned([0, 1]);
    const { s } = scope();
    // Partition 0: its first batch was written by the earlier owner, so it is checked again next time.
    await written(ch, pipeline.handle(partitionBatch([anon(id('p0-0')), anon(id('p0-1'))], 0), s));
    // Partition 1: nothing of its first batch was written before; its later events are new.
    await written(ch, pipeline.handle(partitionBatch([anon(id('p1-0')), anon(id('p1-1'))], 1), s));
    await written(ch, pipeline.handle(partitionBatch([anon(id('p0-2'))], 0), s));
    await written(ch, pipeline.handle(partitionBatch([anon(id('p0-3'))], 0), s));
    await written(ch, pipeline.handle(partitionBatch([anon(id('p1-2'))], 1), s));
    expect(lookedUp).toEqual([[id('p0-0'), id('p0-1')], [id('p1-0'), id('p1-1')], [id('p0-2')]]);
    expect(await metrics.registry.getSingleMetricAsString('consumer_redelivered_actor_kept_total')).toMatch(
      /consumer_redelivered_actor_kept_total\{service="consumer"\} 2/,
    );
  });

  it('checks nothing received after the assignment, nor anything after it in its partition', async () => {
    const {
      pipeline,
      ch,
      written: lookedUp,
    } = setup({ maxRows: 100, maxBytes: 1_000_000, maxAgeMs: 5 }, { links: { a1: 'u1' } });
    pipeline.assigned([0]);
    const { s } = scope();
    const late = Date.now() + 2 * CLOCK_MARGIN_MS;
    await written(ch, pipeline.handle(partitionBatch([anon(id('n-0'), late), anon(id('n-1'))], 0), s));
    expect(lookedUp).toEqual([]);
  });

  it('checks nothing without an assignment since the last check ended', async () => {
    const {
      pipeline,
      ch,
      written: lookedUp,
    } = setup({ maxRows: 100, maxBytes: 1_000_000, maxAgeMs: 5 }, { links: { a1: 'u1' } });
    const { s } = scope();
    await written(ch, pipeline.handle(partitionBatch([anon(id('x-0'))], 0), s));
    pipeline.assigned([0]);
    await written(ch, pipeline.handle(partitionBatch([anon(id('x-1'))], 0), s));
    expect(lookedUp).toEqual([[id('x-1')]]);
  });
});
