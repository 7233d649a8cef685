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
import { type FaultPipeline, runUnderLoad, startFaultPipeline } from '../../harness/fault-run.ts';
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

const DOWN_MS = 20_000;

describe('Kafka cluster: rolling leader kills and two of three down, under load', () => {
  let fp: FaultPipeline;
  const acked: AckedEvent[] = [];

  beforeAll(async () => {
    fp = await startFaultPipeline('kafka-cluster-full', {
      kafkaNodes: 3,
      collectorEnv: { KAFKA_PUBLISH_TIMEOUT_MS: '5000' },
    });
  });

  afterAll(async () => {
    await fp?.close();
  });

  it('three rolling leader kills: no acknowledged event lost or counted twice', async () => {
    const run = await runUnderLoad({
      setup: fp.setup,
      collectors: fp.collectors,
      seed: 16_101,
      tag: 'krolling',
      calmMs: 10_000,
      fault: async () => {
        const steps: string[] = [];
        for (let k = 0; k < 3; k++) {
          const victim = await killLeader(fp.stack, fp.setup.admin, fp.setup.topic);
          const alive = NODES.filter((n) => n !== victim);
          const failover = await waitForFailover(fp.setup.admin, fp.setup.topic, alive);
          await sleep(DOWN_MS);
          const t = Date.now();
          await fp.stack.startKafka();
          // Back in every ISR before the next kill, or the next one could take the last copy.
          await waitForFailover(fp.setup.admin, fp.setup.topic, NODES);
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
    expect(fp.consumer.child.exitCode).toBeNull();
    expect(fp.collectors.current()?.child.exitCode).toBeNull();
  });

  it('two of three down for 20 s: never a 2xx then; nothing acknowledged lost', async () => {
    const earlier: AckedEvent[] = [...acked];
    let whileDown: Record<string, number> = {};
    const run = await runUnderLoad({
      setup: fp.setup,
      collectors: fp.collectors,
      seed: 16_102,
      tag: 'ktwodown',
      earlier,
      calmMs: 10_000,
      fault: async (random) => {
        const first = await killLeader(fp.stack, fp.setup.admin, fp.setup.topic);
        await waitForFailover(
          fp.setup.admin,
          fp.setup.topic,
          NODES.filter((n) => n !== first),
        );
        const second = await killLeader(fp.stack, fp.setup.admin, fp.setup.topic);
        const p = probe(fp.collectors.url, random, 'ktwodown-probe');
        await sleep(DOWN_MS);
        await answers(p, 3);
        whileDown = p.outcomes();
        const states = await partitionStates(fp.setup.admin, fp.setup.topic).catch(() => []);
        const t = Date.now();
        await fp.stack.startKafka();
        for (const a of await p.acknowledged) earlier.push(a);
        return `nodes ${first} and ${second} killed; ${DOWN_MS / 1000} s with one node, probe answers ${JSON.stringify(whileDown)}, partitions ${JSON.stringify(states)}; both back and the probe acknowledged after ${((Date.now() - t) / 1000).toFixed(1)} s`;
      },
    });
    process.stderr.write(`[kafka-two-down-long] ${run.summary}\n`);
    expect(successes(whileDown)).toBe(0);
    expect(whileDown['503'] ?? 0).toBeGreaterThan(0);
    expect(run.stats.rejected).toBe(0);
    expectAckedCounted(run.report);
    expect(fp.consumer.child.exitCode).toBeNull();
    expect(fp.collectors.current()?.child.exitCode).toBeNull();
  });
});
