/**
 * The native event contract, declared once. The collector's validator
 * (services/collector/validation/validate.ts), the OpenAPI/JSON schema of the HTTP body (jsonSchema
 * below) and the TypeScript wire types (NativeEvent, NativeIdentify) are all derived from these
 * tables, and each field names the Avro field it lands in, which
 * services/collector/validation/spec.test.ts checks against schemas/*.avsc. Adding a field here is
 * the whole change on the HTTP side; the test fails until the Avro schema has a home for it. Here
 * beside the Avro schemas rather than in the collector: senders (the demo generator) build events
 * to this contract too.
 */

import { CONTRACT } from './records.ts';

export type Kind =
  | 'uuid'
  | 'id'
  | 'name'
  | 'text'
  | 'country'
  | 'timestamp'
  | 'date'
  | 'integer'
  /** An integer in range, or a string id mapped to a stable integer (validate.ts sessionNumber). */
  | 'session'
  | 'number'
  | 'boolean'
  | 'object'
  | 'details';

export interface FieldSpec {
  readonly kind: Kind;
  /** Avro field(s) this lands in; undefined for fields that only steer the mapping. */
  readonly avro?: string;
  readonly doc: string;
  /** Bounds in the field's normalized unit: the number, ms for timestamps, epoch days for dates. */
  readonly min?: number;
  readonly max?: number;
  /**
   * What a well-formed value outside [min, max] does: 'reject' the event (the default), or 'drop'
   * the value with a warning. Profile dates drop: SDKs send placeholders such as 0001-01-01
   * (.NET's DateTime.MinValue) for "unknown", and the activity must still count.
   */
  readonly outOfRange?: 'reject' | 'drop';
}

export interface GroupSpec {
  readonly kind: 'group';
  readonly doc: string;
  readonly fields: Readonly<Record<string, FieldSpec>>;
}

const f = (
  kind: Kind,
  avro: string | undefined,
  doc: string,
  range: { min?: number; max?: number; outOfRange?: 'reject' | 'drop' } = {},
) => ({ kind, avro, doc, ...range }) as const;

/** Every instant the contract can carry (schemas/records.ts CONTRACT). */
const TIME = { min: CONTRACT.minTimeMs, max: CONTRACT.maxTimeMs } as const;
/** A profile date out of range is dropped with a warning, not the event (see FieldSpec.outOfRange). */
const PROFILE_TIME = { ...TIME, outOfRange: 'drop' } as const;
const PROFILE_DATE = { min: CONTRACT.minDateDays, max: CONTRACT.maxDateDays, outOfRange: 'drop' } as const;

/** String length caps: ids and names are keys and dimension values, never free text. */
export const MAX_ID_LENGTH = 256;
export const MAX_NAME_LENGTH = 200;
export const MAX_TEXT_LENGTH = 1024;

export const EVENT_FIELDS = {
  event_id: f('uuid', 'event_id', 'UUID; the dedup key. Generated when absent.'),
  user_id: f('id', 'user_id', 'Known user id. At least one of user_id and anonymous_id is required.'),
  anonymous_id: f('id', 'anonymous_id', 'Device/browser id before the user is known.'),
  activity: f('name', 'activity_name', 'Activity type name (required), e.g. "login".'),
  feature: f('name', 'feature_name', 'Product feature name, e.g. "search". Empty when absent.'),
  timestamp: f('timestamp', 'original_timestamp', 'ISO-8601 client time of the activity.', TIME),
  session_id: f(
    'session',
    'session_id',
    'Session id: an integer (e.g. session start in ms), or a string id (UUIDs from PostHog and web SDKs), stored as a stable integer with the string kept in the metadata as _session_id.',
    {
      min: 0,
      max: CONTRACT.maxLong,
    },
  ),
  duration_seconds: f('integer', 'duration_seconds', 'Time spent, whole seconds.', {
    min: 0,
    max: CONTRACT.maxInt,
  }),
  device: {
    kind: 'group',
    doc: 'Device; derived from the User-Agent when absent.',
    fields: {
      id: f('id', 'device_id', 'Device id.'),
      type: f(
        'name',
        'device_type',
        'desktop | mobile | tablet | tv | console | wearable | embedded | server',
      ),
      platform: f('name', 'platform', 'web | ios | android | windows | macos | linux | server'),
      os_version: f('name', 'os_version', 'OS version.'),
      app_version: f('name', 'app_version', 'App version.'),
      browser_name: f('name', 'browser_name', 'Browser name.'),
      browser_version: f('name', 'browser_version', 'Browser version.'),
    },
  },
  geo: {
    kind: 'group',
    doc: 'Location; looked up from the client IP when absent.',
    fields: {
      country_code: f('country', 'country_code', 'ISO 3166-1 alpha-2.'),
      region_code: f('name', 'region_code', 'ISO 3166-2 subdivision code (without the country prefix).'),
      city: f('name', 'city_name', 'City name.'),
      postal_code: f('name', 'postal_code', 'Postal code.'),
      latitude: f('number', 'latitude', 'Degrees.', { min: -90, max: 90 }),
      longitude: f('number', 'longitude', 'Degrees.', { min: -180, max: 180 }),
      timezone: f('name', 'timezone', 'IANA time zone, e.g. "Europe/Berlin".'),
    },
  },
  user: {
    kind: 'group',
    doc: 'User profile attributes as of this event.',
    fields: {
      registration_date: f(
        'timestamp',
        'registration_date',
        'ISO-8601 date or time of sign-up.',
        PROFILE_TIME,
      ),
      birth_date: f('date', 'birth_date', 'YYYY-MM-DD.', PROFILE_DATE),
      gender: f('name', 'gender', 'Gender as the product records it.'),
      segment: f('name', 'segment_name', 'User segment name.'),
      account_status: f('name', 'account_status', 'e.g. active | trial | churned.'),
      is_test_account: f('boolean', 'is_test_account', 'Internal/test users are excluded from metrics.'),
      attributes: f('object', 'user_attributes', 'Other user attributes (JSON object).'),
    },
  },
  properties: f('object', 'activity_metadata', 'Free-form event properties (JSON object).'),
  details: f('details', 'details', 'Detail rows: [{"type": string, "payload": any JSON}].'),
} as const satisfies Record<string, FieldSpec | GroupSpec>;

/** Traits with a column of their own; every other trait goes to user_attributes. */
export const IDENTIFY_TRAITS = {
  registration_date: f('timestamp', 'registration_date', 'ISO-8601 date or time of sign-up.', PROFILE_TIME),
  birth_date: f('date', 'birth_date', 'YYYY-MM-DD.', PROFILE_DATE),
  gender: f('name', 'gender', 'Gender.'),
  segment: f('name', 'segment_name', 'User segment name.'),
  segment_description: f('text', 'segment_description', 'Segment description.'),
  segment_category: f('name', 'segment_category', 'Segment category.'),
  account_status: f('name', 'account_status', 'Account status.'),
  is_test_account: f('boolean', 'is_test_account', 'Test/internal user.'),
  country_code: f('country', 'country_code', 'ISO 3166-1 alpha-2.'),
} as const satisfies Record<string, FieldSpec>;

export const IDENTIFY_FIELDS = {
  event_id: f('uuid', 'event_id', 'UUID; the dedup key. Generated when absent.'),
  user_id: f('id', 'user_id', 'The user (required).'),
  anonymous_id: f('id', 'anonymous_id', 'Anonymous id now known to be user_id.'),
  timestamp: f('timestamp', 'identified_at', 'ISO-8601 client time of the identify.', TIME),
  sent_at: f(
    'timestamp',
    'sent_at',
    'ISO-8601 client time the request was sent (clock-skew correction); ignored with a warning when out of range.',
    { ...TIME, outOfRange: 'drop' },
  ),
  traits: {
    kind: 'group',
    doc: 'Profile traits; unknown traits are kept in user_attributes.',
    fields: IDENTIFY_TRAITS,
  },
} as const satisfies Record<string, FieldSpec | GroupSpec>;

type Wire<K extends Kind> = K extends 'integer' | 'number'
  ? number
  : K extends 'session'
    ? number | string
    : K extends 'boolean'
      ? boolean
      : K extends 'object'
        ? Record<string, unknown>
        : K extends 'details'
          ? Array<{ type: string; payload?: unknown }>
          : string;

type WireOf<S> = S extends { kind: 'group'; fields: infer F }
  ? { [K in keyof F]?: WireOf<F[K]> }
  : S extends { kind: infer K extends Kind }
    ? Wire<K>
    : never;

/** An event as an SDK sends it (every field optional on the wire; validate.ts enforces the rules). */
export type NativeEvent = { -readonly [K in keyof typeof EVENT_FIELDS]?: WireOf<(typeof EVENT_FIELDS)[K]> };
export type NativeIdentify = {
  -readonly [K in keyof typeof IDENTIFY_FIELDS]?: WireOf<(typeof IDENTIFY_FIELDS)[K]>;
} & { traits?: Record<string, unknown> };

type JsonSchema = Record<string, unknown>;

function fieldSchema(s: FieldSpec): JsonSchema {
  const base = { description: s.doc };
  switch (s.kind) {
    case 'uuid':
      return { ...base, type: 'string', format: 'uuid' };
    case 'id':
      return { ...base, type: 'string', minLength: 1, maxLength: MAX_ID_LENGTH };
    case 'name':
      return { ...base, type: 'string', minLength: 1, maxLength: MAX_NAME_LENGTH };
    case 'text':
      return { ...base, type: 'string', maxLength: MAX_TEXT_LENGTH };
    case 'country':
      return { ...base, type: 'string', pattern: '^[A-Za-z]{2}$' };
    case 'timestamp':
      return { ...base, type: 'string', format: 'date-time' };
    case 'date':
      return { ...base, type: 'string', format: 'date' };
    case 'integer':
      return { ...base, type: 'integer', minimum: s.min, maximum: s.max };
    case 'session':
      return {
        ...base,
        oneOf: [
          { type: 'integer', minimum: s.min, maximum: s.max },
          { type: 'string', minLength: 1, maxLength: MAX_ID_LENGTH },
        ],
      };
    case 'number':
      return { ...base, type: 'number', minimum: s.min, maximum: s.max };
    case 'boolean':
      return { ...base, type: 'boolean' };
    case 'object':
      return { ...base, type: 'object', additionalProperties: true };
    case 'details':
      return {
        ...base,
        type: 'array',
        items: {
          type: 'object',
          required: ['type'],
          properties: { type: { type: 'string', minLength: 1, maxLength: MAX_NAME_LENGTH }, payload: {} },
        },
      };
  }
}

export function jsonSchema(fields: Readonly<Record<string, FieldSpec | GroupSpec>>, doc: string): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  for (const [name, s] of Object.entries(fields)) {
    properties[name] =
      s.kind === 'group'
        ? { type: 'object', description: s.doc, properties: jsonSchema(s.fields, s.doc).properties }
        : fieldSchema(s);
  }
  return { type: 'object', description: doc, properties };
}
