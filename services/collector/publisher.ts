/**
 * Records -> Avro messages on the one activity topic. Both record families share the topic and the
 * message key (the user's identity) so a user's identify and events stay in order on one partition;
 * the `schema` header names the writer schema so consumers can resolve versions.
 */

import type { ActivityRecord, IdentifyRecord } from '../../schemas/records.ts';
import { type AvroCodec, SCHEMA_HEADER } from '../lib/avro.ts';
import type { OutgoingMessage } from '../lib/kafka-producer.ts';

export type OutgoingRecord =
  | { readonly family: 'user_activity'; readonly record: ActivityRecord }
  | { readonly family: 'user_identify'; readonly record: IdentifyRecord };

/** What the routes need from Kafka: a durable publish and a health answer. */
export interface EventSink {
  readonly publish: (messages: readonly OutgoingMessage[]) => Promise<void>;
  readonly healthy: () => boolean;
  /** How long the oldest unacknowledged publish has waited, ms (BatchingProducer.backlogMs). */
  readonly backlogMs: () => number;
  readonly check: (timeoutMs: number) => Promise<boolean>;
}

/** Message key: user_id, else anonymous_id (validation guarantees one of them). */
export function messageKey(r: OutgoingRecord): string {
  return r.record.user_id ?? (r.family === 'user_activity' ? (r.record.anonymous_id ?? '') : '');
}

export function toMessage(codec: AvroCodec, r: OutgoingRecord): OutgoingMessage {
  return {
    key: messageKey(r),
    // Throws AVRO_INVALID_RECORD only on a validator bug: validation guarantees the record fits.
    value: codec.encode(r.family, r.record),
    headers: { [SCHEMA_HEADER]: codec.writerId(r.family) },
  };
}
