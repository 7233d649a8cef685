/**
 * Turns one Kafka message into a record to write or a poison verdict. Data problems are values
 * here, never exceptions: a poison message goes to the dead-letter topic with its reason and the
 * partition keeps moving. Only infrastructure problems (a broker or database down) throw, elsewhere.
 */

import { CONTRACT } from '../../schemas/records.ts';
import { type AvroCodec, SCHEMA_HEADER } from '../lib/avro.ts';
import { AVRO_CODES, DEAD_LETTER_CODES, type DeadLetterCode } from '../lib/error-codes.ts';
import { PipelineError } from '../lib/errors.ts';
import type { ConsumedMessage } from '../lib/kafka-consumer.ts';
import type { ActivityRecord, IdentifyRecord } from './ingest-row.ts';

export type Decoded =
  | { readonly kind: 'activity'; readonly record: ActivityRecord }
  | { readonly kind: 'identify'; readonly record: IdentifyRecord };

/** Bounded set of reasons; used as a metric label and as the DLQ `reason` header. */
export type PoisonReason =
  | 'empty_value'
  | 'missing_schema_header'
  | 'unknown_schema'
  | 'undecodable'
  | 'invalid_content'
  | 'rejected_by_clickhouse';

export interface Poison {
  readonly kind: 'poison';
  readonly reason: PoisonReason;
  /** The `dlq-error-code` header: one of DEAD_LETTER_CODES. */
  readonly code: DeadLetterCode;
  readonly message: string;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function poison(reason: PoisonReason, code: DeadLetterCode, message: string): Poison {
  return { kind: 'poison', reason, code, message };
}

function invalid(message: string): Poison {
  return poison('invalid_content', DEAD_LETTER_CODES.recordInvalid, message);
}

/** The contract's range, which the collector enforces: outside it only a foreign producer writes. */
function checkTimestamp(
  record: Record<string, unknown>,
  field: string,
  min: number = CONTRACT.minTimeMs,
): string | undefined {
  const v = record[field];
  if (v === null || v === undefined) return undefined;
  const ms = v instanceof Date ? v.getTime() : Number(v);
  if (!Number.isFinite(ms) || ms < min || ms > CONTRACT.maxTimeMs)
    return `${field} out of range: ${String(v)}`;
  return undefined;
}

const nonEmpty = (v: unknown): boolean => typeof v === 'string' && v !== '';

/**
 * Optional instants and dates the collector drops when out of range (spec.ts outOfRange 'drop');
 * a message written before it did (or by another producer) gets the same treatment here, so the
 * event is still counted instead of being refused by ClickHouse.
 */
const OPTIONAL_TIMES = ['sent_at', 'original_timestamp', 'registration_date', 'feature_release_date'];

function withoutOutOfRange(record: Record<string, unknown>): Record<string, unknown> {
  let out = record;
  const drop = (field: string): void => {
    if (out === record) out = { ...record };
    out[field] = null;
  };
  for (const f of OPTIONAL_TIMES) if (f in record && checkTimestamp(record, f)) drop(f);
  const days = record.birth_date;
  if (typeof days === 'number' && (days < CONTRACT.minDateDays || days > CONTRACT.maxDateDays)) {
    drop('birth_date');
  }
  return out;
}

export function decodeMessage(codec: AvroCodec, msg: ConsumedMessage): Decoded | Poison {
  if (msg.value === null || msg.value.length === 0) {
    return poison('empty_value', DEAD_LETTER_CODES.emptyValue, 'message has no value');
  }
  const writerId = msg.headers[SCHEMA_HEADER];
  if (writerId === undefined) {
    return poison(
      'missing_schema_header',
      DEAD_LETTER_CODES.schemaHeaderMissing,
      `no "${SCHEMA_HEADER}" header`,
    );
  }
  let family: string;
  let record: Record<string, unknown>;
  try {
    ({ family, value: record } = codec.decode(writerId, msg.value));
  } catch (err) {
    if (!(err instanceof PipelineError)) throw err;
    // codec.decode throws these two only.
    return err.code === AVRO_CODES.unknownSchema
      ? poison('unknown_schema', DEAD_LETTER_CODES.unknownSchema, err.message)
      : poison('undecodable', DEAD_LETTER_CODES.undecodable, err.message);
  }
  if (typeof record.event_id !== 'string' || !UUID_RE.test(record.event_id)) {
    return invalid(`event_id is not a UUID: ${JSON.stringify(record.event_id)}`);
  }
  if (family === 'user_activity') {
    if (!nonEmpty(record.user_id) && !nonEmpty(record.anonymous_id)) {
      return invalid('activity has neither user_id nor anonymous_id');
    }
    // An empty feature_name is NO_FEATURE (a login, a page view): an ordinary event, counted.
    if (!nonEmpty(record.activity_name)) return invalid('activity_name must be non-empty');
    const bad =
      checkTimestamp(record, 'activity_timestamp', CONTRACT.minActivityTimeMs) ??
      checkTimestamp(record, 'received_at');
    if (bad) return invalid(bad);
    // Avro guarantees the shape; the checks above the content.
    return { kind: 'activity', record: withoutOutOfRange(record) as unknown as ActivityRecord };
  }
  if (family === 'user_identify') {
    if (!nonEmpty(record.user_id)) return invalid('identify has an empty user_id');
    const bad = checkTimestamp(record, 'identified_at') ?? checkTimestamp(record, 'received_at');
    if (bad) return invalid(bad);
    return { kind: 'identify', record: withoutOutOfRange(record) as unknown as IdentifyRecord };
  }
  return poison(
    'unknown_schema',
    DEAD_LETTER_CODES.unknownSchema,
    `schema family ${family} is not consumed here`,
  );
}
