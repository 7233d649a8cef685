/**
 * Kafka at scale (issue 16): the collector and consumer processes on the local 3-node KRaft cluster
 * (replication factor 3, min.insync.replicas 2), SDK-like senders posting through the collector.
 *
 * 1. kill -9 of the node leading partition 0 mid-load: once the controller fenced it, the two
 *    survivors lead every partition with an ISR of two, and the collector acknowledges again
 *    (acks=all is two copies); the load goes on with two of three.
 * 2. Then kill -9 of the new leader: with one of three left, no 2xx (acks=all cannot get two
 *    copies, nor the survivor a controller quorum), 503 until both nodes are back.
 *
 * Each ends with the reliability suite's invariant: every 2xx'd event counted exactly once.
 * A private stack, since the nodes are ours to kill. The longer version is test/faults/full/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultPipeline, runUnderLoad, startFaultPipeline } from '../harness/fault-run.ts';
import { type AckedEvent, expectAckedCounted } from '../harness/invariant.ts';
import { answers, killLeader, NODES, probe, successes, waitForFailover } from '../harness/kafka-cluster.ts';

describe('Kafka cluster: partition leader killed under load', () => {
  let fp: FaultPipeline;
  // Both scenarios write to the same tables: the second checks the first one's events too.
  const acked: AckedEvent[] = [];

  beforeAll(async () => {
    fp = await startFaultPipeline('kafka-cluster', {
      kafkaNodes: 3,
      collectorEnv: { KAFKA_PUBLISH_TIMEOUT_MS: '5000' },
    });
  });

  afterAll(async () => {
    await fp?.close();
  });

  let firstVictim = 0;

  it('leader killed: two of three keep acknowledging; no acknowledged event lost or counted twice', async () => {
    // Read by runUnderLoad after the fault: the probe's events are added to it there.
    const probed: AckedEvent[] = [];
    let outcomes: Record<string, number> = {};
    const run = await runUnderLoad({
      setup: fp.setup,
      collectors: fp.collectors,
      seed: 16_001,
      tag: 'kleader',
      earlier: probed,
      fault: async (random) => {
        firstVictim = await killLeader(fp.stack, fp.setup.admin, fp.setup.topic);
        const alive = NODES.filter((n) => n !== firstVictim);
        const failover = await waitForFailover(fp.setup.admin, fp.setup.topic, alive);
        const p = probe(fp.collectors.url, random, 'kleader-probe');
        for (const a of await p.acknowledged) probed.push(a);
        outcomes = p.outcomes();
        return `node ${firstVictim} (leader of partition 0) killed; nodes ${alive} led every partition with ISR ${alive} after ${failover.toFixed(1)} s; a probe batch then got ${JSON.stringify(outcomes)}; the load went on with two of three`;
      },
    });
    process.stderr.write(`[kafka-leader-kill] ${run.summary}\n`);
    for (const a of [...probed, ...run.acked]) acked.push(a);
    // Acknowledged by two of three: the probe's 2xx came while the killed node was down.
    expect(successes(outcomes)).toBe(1);
    expect(run.stats.rejected).toBe(0);
    expectAckedCounted(run.report);
    expect(fp.consumer.child.exitCode).toBeNull();
    expect(fp.collectors.current()?.child.exitCode).toBeNull();
  });

  it('then the new leader killed: one of three left answers 503, never a 2xx; back, nothing acknowledged lost', async () => {
    expect(firstVictim).toBeGreaterThan(0);
    // Read by runUnderLoad after the fault: the probe's events are added to it there.
    const earlier: AckedEvent[] = [...acked];
    let whileDown: Record<string, number> = {};
    const run = await runUnderLoad({
      setup: fp.setup,
      collectors: fp.collectors,
      seed: 16_002,
      tag: 'ktwo',
      earlier,
      fault: async (random) => {
        const second = await killLeader(fp.stack, fp.setup.admin, fp.setup.topic);
        const p = probe(fp.collectors.url, random, 'ktwo-probe');
        // Three answers: each a publish that waited its timeout (5 s) or was refused at once.
        await answers(p, 3);
        whileDown = p.outcomes();
        const t = Date.now();
        await fp.stack.startKafka();
        for (const a of await p.acknowledged) earlier.push(a);
        return `node ${second} (the new leader of partition 0) killed too; probe answers with one node up ${JSON.stringify(whileDown)}; nodes ${firstVictim} and ${second} back and the probe acknowledged after ${((Date.now() - t) / 1000).toFixed(1)} s`;
      },
    });
    process.stderr.write(`[kafka-two-down] ${run.summary}\n`);
    expect(successes(whileDown)).toBe(0);
    expect(whileDown['503'] ?? 0).toBeGreaterThan(0);
    expect(earlier.length).toBeGreaterThan(acked.length);
    expect(run.stats.rejected).toBe(0);
    expectAckedCounted(run.report);
    expect(fp.consumer.child.exitCode).toBeNull();
    expect(fp.collectors.current()?.child.exitCode).toBeNull();
  });
});
