/**
 * Kafka helpers shared by the integration tests and bench/: produce test messages, read a group's
 * lag and committed offsets. Talks to a broker; spawns nothing.
 */
import type { Admin, Kafka } from '../../services/lib/kafka.ts';
import type { RawMessage } from './fixtures.ts';

/** Produces in chunks with acks=all; returns when the broker has all of them. */
export async function produce(kafka: Kafka, topic: string, messages: readonly RawMessage[]): Promise<void> {
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  for (let i = 0; i < messages.length; i += 5_000) {
    await producer.send({ topic, acks: -1, messages: messages.slice(i, i + 5_000) });
  }
  await producer.disconnect();
}

/** Messages after the group's committed offset, summed over partitions (committed -1 = none). */
export async function groupLag(admin: Admin, groupId: string, topic: string): Promise<number> {
  const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
  const ends = await admin.fetchTopicOffsets(topic);
  let lag = 0;
  for (const e of ends) {
    const c = committed?.partitions.find((p) => p.partition === e.partition);
    const at = c === undefined || Number(c.offset) < 0 ? Number(e.low) : Number(c.offset);
    lag += Number(e.high) - at;
  }
  return lag;
}

/** Sum over partitions of the group's committed offsets: events the group claims are durable. */
export async function committedTotal(admin: Admin, groupId: string, topic: string): Promise<number> {
  const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return (committed?.partitions ?? []).reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0);
}
