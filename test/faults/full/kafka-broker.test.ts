/**
 * The broker restarted (SIGTERM, start again on the same data) and the broker hung (SIGSTOP for
 * 30 s, then SIGCONT) while SDK-like senders post to the collector process and the consumer
 * process reads: the collector answers 503 instead of acknowledging what it could not make durable,
 * the senders retry, and once the broker is back every acknowledged event is counted once with
 * DAU/WAU/MAU equal to the truth. A private Kafka + ClickHouse, so the broker is ours to stop.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CollectorProcesses, collectorProcesses } from '../../harness/collector-process.ts';
import { type ConsumerProcess, type ConsumerSetup, consumerSetup } from '../../harness/consumer-process.ts';
import { runUnderLoad } from '../../harness/fault-run.ts';
import { type AckedEvent, expectAckedCounted } from '../../harness/invariant.ts';
import { type PrivateStack, privateStack } from '../../harness/private-stack.ts';

const HANG_MS = 30_000;

describe('Kafka broker restarted and hung under load', () => {
  let stack: PrivateStack;
  let setup: ConsumerSetup;
  let collectors: CollectorProcesses;
  let consumer: ConsumerProcess;
  // Both scenarios write to the same tables: the second checks the first one's events too.
  const acked: AckedEvent[] = [];

  beforeAll(async () => {
    stack = await privateStack('kafka-broker');
    await Promise.all([stack.startKafka(), stack.startClickhouse()]);
    setup = await consumerSetup('kafka_broker', 6, stack);
    collectors = await collectorProcesses({
      kafkaBrokers: stack.kafkaBrokers,
      topic: setup.topic,
      partitions: 6,
      extra: { KAFKA_PUBLISH_TIMEOUT_MS: '5000' },
    });
    await collectors.start();
    consumer = await setup.start({ BATCH_MAX_ROWS: '2000' });
  });

  afterAll(async () => {
    await collectors?.close();
    await setup?.close().catch(() => undefined);
    await stack?.destroy();
  });

  it('restart: no acknowledged event lost or counted twice', async () => {
    const run = await runUnderLoad({
      setup,
      collectors,
      seed: 10_004,
      tag: 'krestart',
      fault: async () => {
        const t = Date.now();
        await stack.stopKafka();
        const stopped = Date.now();
        await stack.startKafka();
        return `broker stopped in ${((stopped - t) / 1000).toFixed(1)} s, back after ${((Date.now() - t) / 1000).toFixed(1)} s`;
      },
    });
    process.stderr.write(`[kafka-restart] ${run.summary}\n`);
    // A loop, not push(...): hundreds of thousands of arguments overflow the stack.
    for (const a of run.acked) acked.push(a);
    expect(run.stats.rejected).toBe(0);
    expectAckedCounted(run.report);
    expect(consumer.child.exitCode).toBeNull();
    expect(collectors.current()?.child.exitCode).toBeNull();
  });

  it('hung 30 s (SIGSTOP): no acknowledged event lost or counted twice', async () => {
    const run = await runUnderLoad({
      setup,
      collectors,
      seed: 10_005,
      tag: 'khang',
      earlier: acked,
      fault: async () => {
        await stack.pause('kafka');
        await sleep(HANG_MS);
        await stack.resume('kafka');
        return `broker stopped (SIGSTOP) ${HANG_MS / 1000} s`;
      },
    });
    process.stderr.write(`[kafka-hang] ${run.summary}\n`);
    // A loop, not push(...): hundreds of thousands of arguments overflow the stack.
    for (const a of run.acked) acked.push(a);
    expect(run.stats.rejected).toBe(0);
    expectAckedCounted(run.report);
    expect(consumer.child.exitCode).toBeNull();
    expect(collectors.current()?.child.exitCode).toBeNull();
  });
});
