/**
 * The long version of test/faults/kafka-leader-kill.test.ts on the local 3-node cluster (RF 3,
 * min.insync.replicas 2), SDK-like senders posting through the collector process:
 *
 * 1. Rolling kills: three times, kill -9 of whichever node leads partition 0 then, 20 s of load on
 *    the two left, the node restarted on its data (it catches up from the others and rejoins the
 *    ISR) before the next kill. Kafka hands leadership back to a restarted node that is a
 *    partition's preferred replica, so the same node can be the victim twice.
 * 2. Two of three down for 20 s under load: no 2xx in that time, then both back.
 *
 * Each ends with the invariant: every 2xx'd event counted exactly once, none lost.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CollectorProcesses, collectorProcesses } from '../../harness/collector-process.ts';
import { type ConsumerProcess, type ConsumerSetup, consumerSetup } from '../../harness/consumer-process.ts';
import { runUnderLoad } from '../../harness/fault-run.ts';
import { type AckedEvent, expectAckedCounted } from '../../harness/invariant.ts';
import {
  answers,
  killLeader,
  NODES,
  partitionStates,
  probe,
  successes,
  waitForFailover,
} from '../../harness/kafka-cluster.ts';
import { type PrivateStack, privateStack } from '../../harness/private-stack.ts';

const DOWN_MS = 20_000;

describe('Kafka cluster: rolling leader kills and two of three down, under load', () => {
  let stack: PrivateStack;
  let setup: ConsumerSetup;
  let collectors: CollectorProcesses;
  let consumer: ConsumerProcess;
  const acked: AckedEvent[] = [];

  beforeAll(async () => {
    stack = await privateStack('kafka-cluster-full', () => {}, { nodes: 3 });
    await Promise.all([stack.startKafka(), stack.startClickhouse()]);
    setup = await consumerSetup('kafka_cluster_full', 6, stack);
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

  it('three rolling leader kills: no acknowledged event lost or counted twice', async () => {
    const run = await runUnderLoad({
      setup,
      collectors,
      seed: 16_101,
      tag: 'krolling',
      calmMs: 10_000,
      fault: async () => {
        const steps: string[] = [];
        for (let k = 0; k < 3; k++) {
          const victim = await killLeader(stack, setup.admin, setup.topic);
          const alive = NODES.filter((n) => n !== victim);
          const failover = await waitForFailover(setup.admin, setup.topic, alive);
          await sleep(DOWN_MS);
          const t = Date.now();
          await stack.startKafka();
          // Back in every ISR before the next kill, or the next one could take the last copy.
          await waitForFailover(setup.admin, setup.topic, NODES);
          steps.push(
            `node ${victim} killed (failover ${failover.toFixed(1)} s), back in every ISR ${((Date.now() - t) / 1000).toFixed(1)} s after its restart`,
          );
        }
        return steps.join('; ');
      },
    });
    process.stderr.write(`[kafka-rolling] ${run.summary}\n`);
    for (const a of run.acked) acked.push(a);
    expect(run.stats.rejected).toBe(0);
    expectAckedCounted(run.report);
    expect(consumer.child.exitCode).toBeNull();
    expect(collectors.current()?.child.exitCode).toBeNull();
  });

  it('two of three down for 20 s: never a 2xx then; nothing acknowledged lost', async () => {
    const earlier: AckedEvent[] = [...acked];
    let whileDown: Record<string, number> = {};
    const run = await runUnderLoad({
      setup,
      collectors,
      seed: 16_102,
      tag: 'ktwodown',
      earlier,
      calmMs: 10_000,
      fault: async (random) => {
        const first = await killLeader(stack, setup.admin, setup.topic);
        await waitForFailover(
          setup.admin,
          setup.topic,
          NODES.filter((n) => n !== first),
        );
        const second = await killLeader(stack, setup.admin, setup.topic);
        const p = probe(collectors.url, random, 'ktwodown-probe');
        await sleep(DOWN_MS);
        await answers(p, 3);
        whileDown = p.outcomes();
        const states = await partitionStates(setup.admin, setup.topic).catch(() => []);
        const t = Date.now();
        await stack.startKafka();
        for (const a of await p.acknowledged) earlier.push(a);
        return `nodes ${first} and ${second} killed; ${DOWN_MS / 1000} s with one node, probe answers ${JSON.stringify(whileDown)}, partitions ${JSON.stringify(states)}; both back and the probe acknowledged after ${((Date.now() - t) / 1000).toFixed(1)} s`;
      },
    });
    process.stderr.write(`[kafka-two-down-long] ${run.summary}\n`);
    expect(successes(whileDown)).toBe(0);
    expect(whileDown['503'] ?? 0).toBeGreaterThan(0);
    expect(run.stats.rejected).toBe(0);
    expectAckedCounted(run.report);
    expect(consumer.child.exitCode).toBeNull();
    expect(collectors.current()?.child.exitCode).toBeNull();
  });
});
