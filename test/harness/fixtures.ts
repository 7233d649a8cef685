/**
 * Test records: valid Avro activity and identify records with every optional field at its default,
 * and their Kafka messages. Pure (no I/O), so unit tests and bench/ import them without the process
 * harness (consumer-process.ts) that spawns services.
 */
import { randomUUID } from 'node:crypto';
import { AvroCodec, SCHEMA_HEADER, type SchemaFamily } from '../../services/lib/avro.ts';

export const codec = new AvroCodec();

function defaults(family: SchemaFamily): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const type = codec.type(codec.writerId(family)) as unknown as {
    fields: { name: string; defaultValue(): unknown }[];
  };
  for (const f of type.fields) out[f.name] = f.defaultValue();
  return out;
}

/** A valid activity event (every optional field at its default) with `over` applied. */
export function activity(over: Record<string, unknown>): Record<string, unknown> {
  const now = Date.now();
  return {
    ...defaults('user_activity'),
    event_id: randomUUID(),
    source: 'test',
    received_at: now,
    activity_timestamp: now,
    activity_name: 'view',
    feature_name: 'dashboard',
    ...over,
  };
}

export function identify(over: Record<string, unknown>): Record<string, unknown> {
  const now = Date.now();
  return {
    ...defaults('user_identify'),
    event_id: randomUUID(),
    source: 'test',
    received_at: now,
    identified_at: now,
    ...over,
  };
}

export interface RawMessage {
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
  /** Unset: the producer's partitioner picks by key. */
  partition?: number;
}

export function encoded(family: SchemaFamily, record: Record<string, unknown>): RawMessage {
  const key = (record.user_id ?? record.anonymous_id ?? null) as string | null;
  return { key, value: codec.encode(family, record), headers: { [SCHEMA_HEADER]: codec.writerId(family) } };
}
