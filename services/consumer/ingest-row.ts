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
import type { ActivityRecord, IdentifyRecord } from '../../schemas/records.ts';
import { CONSUMER_CODES } from '../lib/error-codes.ts';
import { PipelineError } from '../lib/errors.ts';
import { DAY_MS } from '../lib/time.ts';

export type { ActivityRecord, IdentifyRecord };

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
  throw new PipelineError(CONSUMER_CODES.ingestRowNoIdentity, 'event has neither user_id nor anonymous_id');
}

interface CivilDate {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  /** YYYY-MM-DD */
  readonly iso: string;
}

/**
 * Days the contract allows (1900..2105) are ~75k: every one fits, and a cache bounded like this
 * still cannot grow without limit if a caller passes others.
 */
const CIVIL_CACHE_MAX = 100_000;
const civilCache = new Map<number, CivilDate>();

/**
 * The UTC calendar date of epoch day `days`, cached: rows share a few birth dates and activity
 * days, and two Date objects plus an ISO string per row were a visible share of the consumer's time.
 */
function civil(days: number): CivilDate {
  let c = civilCache.get(days);
  if (c === undefined) {
    const d = new Date(days * DAY_MS);
    c = {
      year: d.getUTCFullYear(),
      month: d.getUTCMonth(),
      day: d.getUTCDate(),
      iso: d.toISOString().slice(0, 10),
    };
    if (civilCache.size < CIVIL_CACHE_MAX) civilCache.set(days, c);
  }
  return c;
}

/** Age in whole years at `atMs` (UTC calendar), banded. */
export function ageBand(birthDateDays: number | null, atMs: number): AgeBand {
  if (birthDateDays === null) return '';
  const birth = civil(birthDateDays);
  const at = civil(Math.floor(atMs / DAY_MS));
  let age = at.year - birth.year;
  const beforeBirthday = at.month < birth.month || (at.month === birth.month && at.day < birth.day);
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

const isoDate = (days: number | null): string | null => (days === null ? null : civil(days).iso);
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
 * Throws PipelineError INGEST_ROW_NO_IDENTITY when the event has neither a user id nor an anonymous
 * id and none was resolved: decode.ts dead-letters such events before (CONSUMER_RECORD_INVALID), so
 * meeting one here is a bug, and the batch fails rather than writing a row without an actor.
 */
export function toIngestActivityRow(
  record: ActivityRecord,
  context: ActivityContext = {},
): IngestActivityRow {
  const { details } = record;
  const { resolvedUserId = null, isFirstDailyActivity = false } = context;
  const row = {
    // One copy of the record with `details` as undefined (inserts name their columns, schema.ts;
    // JSON leaves it out), rather than `const { details, ...rest }`: object rest is V8's slow copy
    // path (a second copy of every field).
    ...record,
    details: undefined,
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
  return row;
}

export function toIngestIdentifyRow(record: IdentifyRecord): IngestIdentifyRow {
  return {
    ...record,
    birth_date: isoDate(record.birth_date),
    is_test_account: optFlag(record.is_test_account),
  };
}
