/**
 * A lease on Kafka (builds on kafka.ts; nothing else imports kafkajs): every process that wants the
 * lease joins one consumer group on a one-partition topic, and the member assigned partition 0
 * holds it. The group coordinator is the arbiter: a holder that stops leaves the group at once,
 * one that dies or loses Kafka is expelled after its session timeout, and either way the next
 * rebalance hands partition 0 to a member still alive. Nothing is ever written to or read from the
 * topic; it exists so the group has one thing to assign.
 *
 * Sticky: each member says in its join metadata whether it holds the lease, and the assignment
 * keeps partition 0 with its holder, so a member joining (a second pod starting) never moves the
 * lease from a holder busy with a pass. Two claims at once (a holder expelled while cut off from
 * Kafka, not yet told) go to the smallest member id, and the other learns at its next heartbeat.
 *
 * A lease is not a lock: between a holder being cut off and its session expiring, and until the
 * expelled holder's next heartbeat, two processes can believe they hold it. Work done under it must
 * be safe to do twice (the refresher's passes are idempotent); the lease makes doubling rare, not
 * impossible.
 */
import { AssignerProtocol, type Consumer, type Kafka, type PartitionAssigner } from 'kafkajs';
import { ensureTopics } from './kafka.ts';
import type { Logger } from './logger.ts';

export interface LeaseOptions {
  readonly kafka: Kafka;
  /** One-partition topic the group is assigned; created when missing. */
  readonly topic: string;
  readonly groupId: string;
  readonly replicationFactor: number;
  readonly sessionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly logger: Logger;
  /** Called on every change of isLeader(). */
  readonly onChange?: (leader: boolean) => void;
}

export interface Lease {
  /** Creates the topic if missing and joins the group; resolves once joined (holder or not). */
  readonly start: () => Promise<void>;
  /** True while this process holds the lease (false during a rebalance and after stop). */
  readonly isLeader: () => boolean;
  /** Leaves the group (a holder hands the lease over at once). Idempotent. */
  readonly stop: () => Promise<void>;
}

const ASSIGNER = 'LeaseAssigner';
const CLAIM = Buffer.from([1]);
const NO_CLAIM = Buffer.from([0]);

/**
 * The member that gets partition 0: the holder of the last generation if it is still a member
 * (the smallest id if several claim), else the smallest member id.
 */
export function chooseHolder(members: readonly { memberId: string; claims: boolean }[]): string | undefined {
  const ids = (claiming: boolean) =>
    members
      .filter((m) => !claiming || m.claims)
      .map((m) => m.memberId)
      .sort();
  return ids(true)[0] ?? ids(false)[0];
}

function leaseAssigner(topic: string, holding: () => boolean): PartitionAssigner {
  return () => ({
    name: ASSIGNER,
    version: 1,
    async assign({ members }) {
      const holder = chooseHolder(
        members.map((m) => ({
          memberId: m.memberId,
          claims: AssignerProtocol.MemberMetadata.decode(m.memberMetadata)?.userData?.[0] === 1,
        })),
      );
      return members.map((m) => ({
        memberId: m.memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({
          version: 1,
          assignment: { [topic]: m.memberId === holder ? [0] : [] },
          userData: Buffer.alloc(0),
        }),
      }));
    },
    protocol({ topics }) {
      return {
        name: ASSIGNER,
        metadata: AssignerProtocol.MemberMetadata.encode({
          version: 1,
          topics,
          userData: holding() ? CLAIM : NO_CLAIM,
        }),
      };
    },
  });
}

export function createLease(o: LeaseOptions): Lease {
  const log = o.logger.child({ component: 'kafka-lease', groupId: o.groupId, topic: o.topic });
  // `held`: partition 0 was ours in the last assignment (what this member claims when it joins
  // again); `leader`: it is ours now, false from a rebalance's start until the new assignment.
  let held = false;
  let leader = false;
  const set = (next: boolean, why: string): void => {
    if (next === leader) return;
    leader = next;
    log.info({ leader, why }, leader ? 'lease acquired' : 'lease released');
    o.onChange?.(leader);
  };
  const consumer: Consumer = o.kafka.consumer({
    groupId: o.groupId,
    partitionAssigners: [leaseAssigner(o.topic, () => held)],
    sessionTimeout: o.sessionTimeoutMs,
    heartbeatInterval: o.heartbeatIntervalMs,
    rebalanceTimeout: o.sessionTimeoutMs,
    // An idle member heartbeats between fetches: an empty fetch must return well within a session.
    maxWaitTimeInMs: o.heartbeatIntervalMs,
    allowAutoTopicCreation: false,
  });
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    held = (payload.memberAssignment[o.topic] ?? []).includes(0);
    set(held, `joined generation as ${payload.memberId}`);
  });
  consumer.on(consumer.events.REBALANCING, () => set(false, 'group rebalancing'));
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    held = false;
    set(false, 'consumer crashed');
    log.warn({ err: payload.error, restart: payload.restart }, 'lease consumer crashed');
  });
  consumer.on(consumer.events.STOP, () => set(false, 'stopped'));

  let started = false;
  let stopping: Promise<void> | undefined;
  return {
    start: async () => {
      if (started) return;
      started = true;
      const admin = o.kafka.admin();
      await admin.connect();
      try {
        await ensureTopics(admin, [
          { topic: o.topic, partitions: 1, replicationFactor: o.replicationFactor },
        ]);
      } finally {
        await admin.disconnect();
      }
      await consumer.connect();
      await consumer.subscribe({ topic: o.topic, fromBeginning: false });
      await consumer.run({ eachMessage: async () => {} });
    },
    isLeader: () => leader,
    stop: () => {
      stopping ??= (async () => {
        held = false;
        set(false, 'stopping');
        if (started) await consumer.disconnect();
      })();
      return stopping;
    },
  };
}
