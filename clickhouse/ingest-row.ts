/**
 * Decoded Avro record -> JSONEachRow object for the ingest tables (the consumer's only knowledge of
 * the ClickHouse column types). Pure: no I/O, no clock.
 *
 * Input: the record exactly as avsc decodes schemas/user_activity.v1.avsc / user_identify.v1.avsc:
 * timestamp-millis as a number of ms, Avro `date` as epoch days, optional fields as null, booleans
 * as booleans, `details` as [{ detail_type, detail_payload }].
 * Output: the same field names (plus actor_id and age_band for activity) with ClickHouse-ready
 * values: ms stay numbers (UInt64 columns), booleans become 0/1, birth_date becomes 'YYYY-MM-DD'.
 *
 * What the consumer knows beyond the event comes in as ActivityContext: the user id an anonymous
 * id is linked to (identity_map, clickhouse/README.md "Identity"; used only when the event itself
 * carries no user_id) and its best-effort is_first_daily_activity (services/consumer/profiles.ts).
 */
import { PipelineError } from '../services/lib/errors.ts';

type Ms = number;

/** schemas/user_activity.v1.avsc as avsc decodes it (ingest-row.test.ts keeps them in step). */
export interface ActivityRecord {
  readonly event_id: string;
  readonly source: string;
  readonly received_at: Ms;
  readonly sent_at: Ms | null;
  readonly original_timestamp: Ms | null;
  readonly activity_timestamp: Ms;
  readonly user_id: string | null;
  readonly anonymous_id: string | null;
  readonly session_id: number | null;
  readonly duration_seconds: number | null;
  readonly activity_name: string;
  readonly activity_category: string | null;
  readonly is_conversion_event: boolean | null;
  readonly activity_weight: number | null;
  readonly feature_name: string;
  readonly feature_category: string | null;
  readonly is_core_feature: boolean | null;
  readonly feature_release_date: Ms | null;
  readonly feature_owner: string | null;
  readonly device_id: string | null;
  readonly device_type: string | null;
  readonly platform: string | null;
  readonly os_version: string | null;
  readonly app_version: string | null;
  readonly browser_name: string | null;
  readonly browser_version: string | null;
  readonly continent_code: string | null;
  readonly country_code: string | null;
  readonly country_name: string | null;
  readonly region_code: string | null;
  readonly region_name: string | null;
  readonly city_name: string | null;
  readonly postal_code: string | null;
  readonly latitude: number | null;
  readonly longitude: number | null;
  readonly timezone: string | null;
  readonly registration_date: Ms | null;
  /** Avro date: days since 1970-01-01 (negative before). */
  readonly birth_date: number | null;
  readonly gender: string | null;
  readonly segment_name: string | null;
  readonly segment_description: string | null;
  readonly segment_category: string | null;
  readonly account_status: string | null;
  readonly is_test_account: boolean;
  readonly user_attributes: string | null;
  readonly client_ip: string | null;
  readonly user_agent: string | null;
  readonly is_bot: boolean;
  readonly activity_metadata: string;
  readonly details: readonly { readonly detail_type: string; readonly detail_payload: string }[];
}

/** schemas/user_identify.v1.avsc as avsc decodes it. */
export interface IdentifyRecord {
  readonly event_id: string;
  readonly source: string;
  readonly received_at: Ms;
  readonly sent_at: Ms | null;
  readonly identified_at: Ms;
  readonly kind: 'identify' | 'alias';
  readonly user_id: string;
  readonly anonymous_id: string | null;
  readonly previous_id: string | null;
  readonly registration_date: Ms | null;
  readonly birth_date: number | null;
  readonly gender: string | null;
  readonly segment_name: string | null;
  readonly segment_description: string | null;
  readonly segment_category: string | null;
  readonly account_status: string | null;
  readonly is_test_account: boolean | null;
  readonly country_code: string | null;
  readonly user_attributes: string | null;
  readonly client_ip: string | null;
  readonly user_agent: string | null;
}

type Flag = 0 | 1;
type Replace<T, R> = Omit<T, keyof R> & R;

/** One row of ingest_user_activity (JSONEachRow). */
export type IngestActivityRow = Replace<
  Omit<ActivityRecord, 'details'>,
  {
    readonly actor_id: string;
    readonly age_band: AgeBand;
    readonly is_first_daily_activity: Flag;
    readonly is_conversion_event: Flag | null;
    readonly is_core_feature: Flag | null;
    readonly is_test_account: Flag;
    readonly is_bot: Flag;
    readonly birth_date: string | null;
    readonly 'details.detail_type': readonly string[];
    readonly 'details.detail_payload': readonly string[];
  }
>;

/** One row of ingest_user_identify (JSONEachRow). */
export type IngestIdentifyRow = Replace<
  IdentifyRecord,
  { readonly is_test_account: Flag | null; readonly birth_date: string | null }
>;

export const AGE_BANDS = ['', '<18', '18-24', '25-34', '35-44', '45-54', '55-64', '65+'] as const;
/** '' when the birth date is unknown (the rollups' convention for every unknown attribute). */
export type AgeBand = (typeof AGE_BANDS)[number];

const DAY_MS = 86_400_000;
/** Prefix that keeps an anonymous id from ever colliding with a user id of the same text. */
export const ANONYMOUS_PREFIX = 'anon:';

/** The identity an event counts as: its user id, else the resolved one, else its anonymous id. */
export function actorId(
  userId: string | null,
  anonymousId: string | null,
  resolvedUserId?: string | null,
): string {
  if (userId) return userId;
  if (resolvedUserId) return resolvedUserId;
  if (anonymousId) return `${ANONYMOUS_PREFIX}${anonymousId}`;
  throw new PipelineError('INGEST_ROW_NO_IDENTITY', 'event has neither user_id nor anonymous_id');
}

/** Age in whole years at `atMs` (UTC calendar), banded. */
export function ageBand(birthDateDays: number | null, atMs: Ms): AgeBand {
  if (birthDateDays === null) return '';
  const birth = new Date(birthDateDays * DAY_MS);
  const at = new Date(atMs);
  let age = at.getUTCFullYear() - birth.getUTCFullYear();
  const beforeBirthday =
    at.getUTCMonth() < birth.getUTCMonth() ||
    (at.getUTCMonth() === birth.getUTCMonth() && at.getUTCDate() < birth.getUTCDate());
  if (beforeBirthday) age -= 1;
  if (age < 0) return '';
  if (age < 18) return '<18';
  if (age < 25) return '18-24';
  if (age < 35) return '25-34';
  if (age < 45) return '35-44';
  if (age < 55) return '45-54';
  if (age < 65) return '55-64';
  return '65+';
}

const isoDate = (days: number | null): string | null =>
  days === null ? null : new Date(days * DAY_MS).toISOString().slice(0, 10);
const flag = (b: boolean): Flag => (b ? 1 : 0);
const optFlag = (b: boolean | null): Flag | null => (b === null ? null : flag(b));

/** What the consumer adds to an activity (services/consumer/profiles.ts); absent = unknown. */
export interface ActivityContext {
  /** The user an anonymous id is linked to; used only when the event has no user_id. */
  readonly resolvedUserId?: string | null;
  /** Best effort (see profiles.ts); 0 when not given, as for rows built outside the consumer. */
  readonly isFirstDailyActivity?: boolean;
}

/**
 * Throws PipelineError INGEST_ROW_NO_IDENTITY (not retriable: dead-letter the message) when the
 * event has neither a user id nor an anonymous id and none was resolved.
 */
export function toIngestActivityRow(
  record: ActivityRecord,
  context: ActivityContext = {},
): IngestActivityRow {
  const { details, ...rest } = record;
  const { resolvedUserId = null, isFirstDailyActivity = false } = context;
  return {
    ...rest,
    user_id: record.user_id ?? resolvedUserId,
    actor_id: actorId(record.user_id, record.anonymous_id, resolvedUserId),
    age_band: ageBand(record.birth_date, record.activity_timestamp),
    is_first_daily_activity: flag(isFirstDailyActivity),
    birth_date: isoDate(record.birth_date),
    is_conversion_event: optFlag(record.is_conversion_event),
    is_core_feature: optFlag(record.is_core_feature),
    is_test_account: flag(record.is_test_account),
    is_bot: flag(record.is_bot),
    'details.detail_type': details.map((d) => d.detail_type),
    'details.detail_payload': details.map((d) => d.detail_payload),
  };
}

export function toIngestIdentifyRow(record: IdentifyRecord): IngestIdentifyRow {
  return {
    ...record,
    birth_date: isoDate(record.birth_date),
    is_test_account: optFlag(record.is_test_account),
  };
}
