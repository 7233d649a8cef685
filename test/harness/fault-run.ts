/**
 * The shape of a fault scenario under load: senders that retry like an SDK keep posting to the
 * collector process, the fault happens in the middle, the load stops (every batch in flight retried
 * until acknowledged), the pipeline drains, and the invariant check runs on what was acknowledged.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type PrivateStack, privateStack } from '../../deploy/local/private-stack.ts';
import { rng } from '../../services/demo/generator.ts';
import { groupLag } from '../fixtures/kafka.ts';
import { type CollectorProcesses, collectorProcesses } from './collector-process.ts';
import {
  type ConsumerProcess,
  type ConsumerSetup,
  consumerSetup,
  distinctEvents,
  waitFor,
} from './consumer-process.ts';
import { type AckedEvent, checkAckedCounted, type InvariantReport } from './invariant.ts';
import { activityBatches, RetryingSender, type SenderStats, startLoad } from './sender.ts';

/** A private stack (a fault stops nothing else) with collector processes and one consumer on it. */
export interface FaultPipeline {
  readonly stack: PrivateStack;
  readonly setup: ConsumerSetup;
  readonly collectors: CollectorProcesses;
  readonly consumer: ConsumerProcess;
  readonly close: () => Promise<void>;
}

/** `name` in kebab case: the stack's folder; its snake-case form names the database. */
export async function startFaultPipeline(
  name: string,
  o: {
    readonly kafkaNodes?: number;
    readonly collectorEnv?: Record<string, string>;
    readonly consumerEnv?: Record<string, string>;
  } = {},
): Promise<FaultPipeline> {
  const stack = await privateStack(name, () => {}, { nodes: o.kafkaNodes ?? 1 });
  await Promise.all([stack.startKafka(), stack.startClickhouse()]);
  const setup = await consumerSetup(name.replace(/-/g, '_'), 6, stack);
  const collectors = await collectorProcesses({
    kafkaBrokers: stack.kafkaBrokers,
    topic: setup.topic,
    partitions: 6,
    ...(o.collectorEnv === undefined ? {} : { extra: o.collectorEnv }),
  });
  await collectors.start();
  const consumer = await setup.start({ BATCH_MAX_ROWS: '2000', ...o.consumerEnv });
  return {
    stack,
    setup,
    collectors,
    consumer,
    close: async () => {
      await collectors.close();
      await setup.close().catch(() => undefined);
      await stack.destroy();
    },
  };
}

export interface FaultRun {
  /** What this run's load got acknowledged (pass it as `earlier` to the next run on the same tables). */
  readonly acked: readonly AckedEvent[];
  readonly report: InvariantReport;
  readonly stats: SenderStats;
  /** What fault() said it did. */
  readonly fault: string;
  /** Seconds from the end of the load until every acknowledged event was in ClickHouse. */
  readonly drainSeconds: number;
  /** One line for the test output and docs/RELIABILITY.md. */
  readonly summary: string;
}

export async function runUnderLoad(o: {
  setup: ConsumerSetup;
  collectors: CollectorProcesses;
  seed: number;
  tag: string;
  /** Events acknowledged by earlier runs on the same database: they are in the table too. */
  earlier?: readonly AckedEvent[];
  /** Breaks something and repairs it; returns a description with its measured durations. */
  fault: (random: () => number) => Promise<string>;
  /** Load before and after the fault, ms. */
  calmMs?: number;
  /** How long the pipeline may take to drain after the load stops, ms. */
  drainTimeoutMs?: number;
}): Promise<FaultRun> {
  const random = rng(o.seed);
  const sender = new RetryingSender({ url: o.collectors.url, random });
  const load = startLoad({
    sender,
    concurrency: 4,
    // ~50 events per request, a short pause: a few thousand events/s, steady, on 2 shared cores.
    next: activityBatches({ random, size: 50, users: 3_000, days: 3, tag: o.tag }),
    pauseMs: 20,
  });
  const calm = o.calmMs ?? 3_000;
  const started = Date.now();
  await sleep(calm);
  const fault = await o.fault(random);
  await sleep(calm);
  const acked = await load.stop();
  const loadSeconds = (Date.now() - started) / 1000;
  const all = [...(o.earlier ?? []), ...acked];
  const ids = new Set(all.map((a) => a.eventId)).size;
  const drainStart = Date.now();
  await waitFor(
    'every acknowledged event written',
    () => distinctEvents(o.setup.db.client),
    (n) => n >= ids,
    o.drainTimeoutMs ?? 180_000,
  );
  const drainSeconds = (Date.now() - drainStart) / 1000;
  await waitFor(
    'lag 0',
    () => groupLag(o.setup.admin, o.setup.groupId, o.setup.topic),
    (n) => n === 0,
  );
  const report = await checkAckedCounted({
    client: o.setup.db.client,
    database: o.setup.db.name,
    clickhouseUrl: o.setup.at.clickhouseUrl,
    acked: all,
  });
  const s = sender.stats;
  const summary =
    `seed ${o.seed}, ${loadSeconds.toFixed(1)} s of load; ${fault}; requests ${s.requests} (retries ${s.retries}, ` +
    `outcomes ${JSON.stringify(s.outcomes)}, max attempts ${s.maxAttempts}); drained ${drainSeconds.toFixed(1)} s after ` +
    `the load; ${report.summary}`;
  return { acked, report, stats: s, fault, drainSeconds, summary };
}
