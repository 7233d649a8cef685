/**
 * The broker restarted (SIGTERM, start again on the same data) and the broker hung (SIGSTOP for
 * 30 s, then SIGCONT) while SDK-like senders post to the collector process and the consumer
 * process reads: the collector answers 503 instead of acknowledging what it could not make durable,
 * the senders retry, and once the broker is back every acknowledged event is counted once with
 * DAU/WAU/MAU equal to the truth. A private Kafka + ClickHouse, so the broker is ours to stop.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultPipeline, runUnderLoad, startFaultPipeline } from '../../harness/fault-run.ts';
import { type AckedEvent, expectAckedCounted } from '../../harness/invariant.ts';

const HANG_MS = 30_000;

describe('Kafka broker restarted and hung under load', () => {
  let fp: FaultPipeline;
  // Both scenarios write to the same tables: the second checks the first one's events too.
  const acked: AckedEvent[] = [];

  beforeAll(async () => {
    fp = await startFaultPipeline('kafka-broker', { collectorEnv: { KAFKA_PUBLISH_TIMEOUT_MS: '5000' } });
  });

  afterAll(async () => {
    await fp?.close();
  });

  it('restart: no acknowledged event lost or counted twice', async () => {
    const run = await runUnderLoad({
      setup: fp.setup,
      collectors: fp.collectors,
      seed: 10_004,
      tag: 'krestart',
      fault: async () => {
        const t = Date.now();
        await fp.stack.stopKafka();
        const stopped = Date.now();
        await fp.stack.startKafka();
        return `broker stopped in ${((stopped - t) / 1000).toFixed(1)} s, back after ${((Date.now() - t) / 1000).toFixed(1)} s`;
      },
    });
    process.stderr.write(`[kafka-restart] ${run.summary}\n`);
    // A loop, not push(...): hundreds of thousands of arguments overflow the stack.
    for (const a of run.acked) acked.push(a);
    expect(run.stats.rejected).toBe(0);
    expectAckedCounted(run.report);
    expect(fp.consumer.child.exitCode).toBeNull();
    expect(fp.collectors.current()?.child.exitCode).toBeNull();
  });

  it('hung 30 s (SIGSTOP): no acknowledged event lost or counted twice', async () => {
    const run = await runUnderLoad({
      setup: fp.setup,
      collectors: fp.collectors,
      seed: 10_005,
      tag: 'khang',
      earlier: acked,
      fault: async () => {
        await fp.stack.pause('kafka');
        await sleep(HANG_MS);
        await fp.stack.resume('kafka');
        return `broker stopped (SIGSTOP) ${HANG_MS / 1000} s`;
      },
    });
    process.stderr.write(`[kafka-hang] ${run.summary}\n`);
    // A loop, not push(...): hundreds of thousands of arguments overflow the stack.
    for (const a of run.acked) acked.push(a);
    expect(run.stats.rejected).toBe(0);
    expectAckedCounted(run.report);
    expect(fp.consumer.child.exitCode).toBeNull();
    expect(fp.collectors.current()?.child.exitCode).toBeNull();
  });
});
