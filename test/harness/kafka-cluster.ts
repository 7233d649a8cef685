/**
 * Broker faults on the private 3-node cluster (private-stack.ts with `nodes: 3`), shared by the
 * short kill test (test/faults/kafka-leader-kill.test.ts) and the long one (test/faults/full/):
 * who leads a partition, kill -9 of that node, waiting for the controller to move leadership, and
 * a probe batch sent through the collector while brokers are down, its first answers recorded.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { PrivateStack } from '../../deploy/local/private-stack.ts';
import type { Admin } from '../../services/lib/kafka.ts';
import { waitFor } from './consumer-process.ts';
import type { AckedEvent } from './invariant.ts';
import { activityBatches, RetryingSender } from './sender.ts';

export const NODES = [1, 2, 3] as const;

interface PartitionState {
  readonly partition: number;
  readonly leader: number;
  readonly isr: readonly number[];
}

export async function partitionStates(admin: Admin, topic: string): Promise<PartitionState[]> {
  const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
  return (topics[0]?.partitions ?? []).map((p) => ({
    partition: p.partitionId,
    leader: p.leader,
    isr: [...p.isr].sort(),
  }));
}

/** The broker leading `partition` of `topic` now. */
export async function leaderOf(admin: Admin, topic: string, partition: number): Promise<number> {
  const state = (await partitionStates(admin, topic)).find((p) => p.partition === partition);
  if (state === undefined || state.leader < 0) throw new Error(`${topic}/${partition} has no leader`);
  return state.leader;
}

/**
 * Waits until the controller fenced the dead nodes (broker.session.timeout.ms, 9 s by default):
 * every partition led by a node in `alive`, its in-sync replicas exactly `alive`. Returns the
 * seconds it took.
 */
export async function waitForFailover(
  admin: Admin,
  topic: string,
  alive: readonly number[],
  timeoutMs = 60_000,
): Promise<number> {
  const t = Date.now();
  const want = [...alive].sort().join(',');
  await waitFor(
    `partitions of ${topic} led by nodes ${want} with ISR ${want}`,
    () => partitionStates(admin, topic),
    (ps) => ps.length > 0 && ps.every((p) => alive.includes(p.leader) && p.isr.join(',') === want),
    timeoutMs,
  );
  return (Date.now() - t) / 1000;
}

/** kill -9 of the node leading `partition`; returns its id. */
export async function killLeader(
  stack: PrivateStack,
  admin: Admin,
  topic: string,
  partition = 0,
): Promise<number> {
  const victim = await leaderOf(admin, topic, partition);
  await stack.killKafkaNode(victim);
  return victim;
}

/**
 * One batch sent through the collector by its own SDK-like sender, which retries until a 2xx like
 * the load's senders (so a batch refused while brokers are down is not lost, and anything of it
 * that reached a log is acknowledged in the end). `outcomes` are its answers so far;
 * `acknowledged` resolves with the batch once a 2xx came.
 */
export function probe(
  url: string,
  random: () => number,
  tag: string,
): { readonly outcomes: () => Record<string, number>; readonly acknowledged: Promise<AckedEvent[]> } {
  const sender = new RetryingSender({ url, random });
  const batch = activityBatches({ random, size: 20, users: 100, days: 3, tag })(0);
  return { outcomes: () => ({ ...sender.stats.outcomes }), acknowledged: sender.send(batch) };
}

/** Answers counted in `outcomes` that were a 2xx. */
export function successes(outcomes: Readonly<Record<string, number>>): number {
  return Object.entries(outcomes)
    .filter(([status]) => status.startsWith('2'))
    .reduce((n, [, count]) => n + count, 0);
}

/** Resolves once the probe got at least `n` answers, whatever their status. */
export async function answers(p: ReturnType<typeof probe>, n: number, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Object.values(p.outcomes()).reduce((a, b) => a + b, 0) < n) {
    if (Date.now() > until) throw new Error(`probe: fewer than ${n} answers in ${timeoutMs} ms`);
    await sleep(100);
  }
}
