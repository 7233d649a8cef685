/**
 * Amplitude's HTTP API v2 / Batch API events (https://amplitude.com/docs/apis/analytics/http-v2)
 * -> the native event and identify shapes, which then go through the same validation and
 * enrichment as native input. `$identify` events (what the SDKs' identify() sends) become profile
 * updates; every other event type is an activity. Fields without a home (library, plan, language,
 * carrier, device_model, groups, ...) are SDK bookkeeping or have no column, and are not kept.
 */
import { nameUuid } from '../enrichment/event-id.ts';
import type { UserAgentInfo } from '../enrichment/user-agent.ts';
import { isPlainObject, own } from '../validation/validate.ts';

export interface AmplitudeOptions {
  /** The event property that names the feature (AMPLITUDE_FEATURE_PROPERTY, else FEATURE_PROPERTY). */
  readonly featureProperty: string;
  /** Event type -> feature for events that do not carry the property (FEATURE_MAP). */
  readonly featureMap: ReadonlyMap<string, string>;
  /** Reads a User-Agent (the collector's cached parser): fills the device fields an event lacks. */
  readonly userAgent: (ua: string) => UserAgentInfo | undefined;
}

/** Per-event overrides of the request's context (a server SDK relays its end user's IP and UA). */
export interface EventContext {
  readonly ip: string | undefined;
  readonly userAgent: string | undefined;
}

export type AmplitudeMapped =
  | {
      readonly kind: 'activity';
      readonly event: Record<string, unknown>;
      readonly context: EventContext;
      readonly warnings: readonly string[];
    }
  | {
      readonly kind: 'identify';
      readonly identify: Record<string, unknown>;
      readonly context: EventContext;
      readonly warnings: readonly string[];
    }
  /**
   * Refused before validation. `missing`: a field Amplitude requires is absent (answered in
   * events_with_missing_fields), else a field is unusable (events_with_invalid_fields).
   */
  | { readonly kind: 'error'; readonly field: string; readonly missing: boolean; readonly message: string };

/** Amplitude's "no session" (the SDKs send -1 outside a session). */
const NO_SESSION = -1;
/** Largest |ms| a Date holds; beyond it toISOString throws. */
const MAX_DATE_MS = 8.64e15;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * insert_id is Amplitude's dedup key, a UUID from the SDKs but any string from other senders;
 * event_id is a UUID. Other strings map to a name-based UUID, so a resent event keeps its id.
 */
export function eventIdFor(insertId: string): string {
  if (UUID_RE.test(insertId)) return insertId.toLowerCase();
  return nameUuid('amplitude-insert-id:', insertId);
}

const strOrUndef = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const numOrUndef = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);

function compact(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

function nonEmpty(o: Record<string, unknown>): Record<string, unknown> | undefined {
  return Object.keys(o).length === 0 ? undefined : o;
}

/** user_properties operations that set values; the rest change values in place, which needs the old one. */
const SET_OPERATIONS = ['$setOnce', '$set'] as const;

/**
 * user_properties -> the values they set: plain keys (the HTTP API's shorthand for $set), then
 * $setOnce, then $set (a later source wins). A profile here is the latest identify's snapshot, so
 * $setOnce cannot keep an older value and sets like $set; $add, $append, $unset, ... are ignored
 * with a warning.
 */
function userPropertiesOf(raw: unknown, warnings: string[]): Record<string, unknown> | string {
  if (raw === undefined || raw === null) return {};
  if (!isPlainObject(raw)) return 'user_properties: expected an object';
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (!k.startsWith('$')) out[k] = v;
    else if (!(SET_OPERATIONS as readonly string[]).includes(k))
      warnings.push(`user_properties.${k}: operation not supported (ignored)`);
  }
  for (const op of SET_OPERATIONS) {
    const values = raw[op];
    if (values === undefined || values === null) continue;
    if (!isPlainObject(values)) return `user_properties.${op}: expected an object`;
    Object.assign(out, values);
  }
  return out;
}

const MOBILE_PLATFORMS = new Set(['ios', 'android']);

/** Amplitude's device fields, then what the User-Agent says for the fields they leave empty. */
function deviceOf(e: Record<string, unknown>, ua: UserAgentInfo | undefined): Record<string, unknown> {
  const given = strOrUndef(e.platform)?.toLowerCase().replace(/\s+/g, '');
  const osName = strOrUndef(e.os_name);
  const explicit = compact({
    id: strOrUndef(e.device_id),
    type: given !== undefined && MOBILE_PLATFORMS.has(given) ? 'mobile' : undefined,
    platform: given,
    os_version: osName ? [osName, strOrUndef(e.os_version)].filter(Boolean).join(' ') : undefined,
    app_version: strOrUndef(e.app_version),
  });
  if (ua === undefined) return explicit;
  return {
    ...compact({
      type: ua.device_type === 'unknown' ? undefined : ua.device_type,
      platform: ua.platform,
      os_version: ua.os_version,
      browser_name: ua.browser_name,
      browser_version: ua.browser_version,
    }),
    ...explicit,
  };
}

function geoOf(e: Record<string, unknown>): Record<string, unknown> {
  const country = strOrUndef(e.country);
  return compact({
    // Amplitude's country is a name ("United States") unless a sender gives a code.
    country_code: country && /^[A-Za-z]{2}$/.test(country) ? country : undefined,
    city: strOrUndef(e.city),
    latitude: numOrUndef(e.location_lat),
    longitude: numOrUndef(e.location_lng),
  });
}

/** Top-level revenue fields: kept in the properties (event_properties win on a name clash). */
const REVENUE_FIELDS = ['price', 'quantity', 'revenue', 'productId', 'revenueType'] as const;

/** Maps one event of an Amplitude upload; `requestUserAgent` is the request's User-Agent header. */
export function mapAmplitude(
  raw: unknown,
  o: AmplitudeOptions,
  requestUserAgent: string | undefined,
): AmplitudeMapped {
  if (!isPlainObject(raw))
    return { kind: 'error', field: 'event', missing: false, message: 'event: expected an object' };
  const eventType = raw.event_type;
  if (eventType === undefined || eventType === null || eventType === '')
    return { kind: 'error', field: 'event_type', missing: true, message: 'event_type: required' };
  if (typeof eventType !== 'string')
    return { kind: 'error', field: 'event_type', missing: false, message: 'event_type: expected a string' };
  if (eventType === '$groupidentify')
    return {
      kind: 'error',
      field: 'event_type',
      missing: false,
      message: 'event_type: $groupidentify (group properties) is not supported',
    };
  // Null or "" is no id (the SDKs send no user_id before setUserId, other senders null or "").
  const userId = raw.user_id === '' ? undefined : (raw.user_id ?? undefined);
  const deviceId = raw.device_id === '' ? undefined : (raw.device_id ?? undefined);
  if (userId === undefined && deviceId === undefined)
    return {
      kind: 'error',
      field: 'user_id',
      missing: true,
      message: 'user_id: required (user_id or device_id)',
    };
  let timestamp: unknown;
  if (raw.time !== undefined && raw.time !== null) {
    if (typeof raw.time !== 'number' || !Number.isFinite(raw.time) || Math.abs(raw.time) > MAX_DATE_MS)
      return { kind: 'error', field: 'time', missing: false, message: 'time: expected ms since epoch' };
    timestamp = new Date(raw.time).toISOString();
  }
  let eventId: unknown;
  if (raw.insert_id !== undefined && raw.insert_id !== null) {
    if (typeof raw.insert_id !== 'string' || raw.insert_id === '')
      return { kind: 'error', field: 'insert_id', missing: false, message: 'insert_id: expected a string' };
    eventId = eventIdFor(raw.insert_id);
  }
  const ip = strOrUndef(raw.ip);
  const userAgent = strOrUndef(raw.user_agent);
  // '$remote' asks for the request's address, which is the default.
  const context: EventContext = { ip: ip === '$remote' ? undefined : ip, userAgent };
  const warnings: string[] = [];
  const userProperties = userPropertiesOf(raw.user_properties, warnings);
  if (typeof userProperties === 'string')
    return { kind: 'error', field: 'user_properties', missing: false, message: userProperties };
  const common = { event_id: eventId, user_id: userId, timestamp };

  if (eventType === '$identify') {
    const identify = compact({
      ...common,
      anonymous_id: deviceId,
      traits: nonEmpty(userProperties),
    });
    return { kind: 'identify', identify, context, warnings };
  }

  let properties: unknown = raw.event_properties ?? undefined;
  const revenue = compact(Object.fromEntries(REVENUE_FIELDS.map((k) => [k, raw[k] ?? undefined])));
  // Not an object: left as sent, for validation to name the field.
  if (properties === undefined || isPlainObject(properties)) properties = { ...revenue, ...properties };
  const fromProperty = isPlainObject(properties) ? strOrUndef(own(properties, o.featureProperty)) : undefined;
  const ua = userAgent ?? requestUserAgent;
  const event = compact({
    ...common,
    anonymous_id: deviceId,
    activity: eventType,
    feature: fromProperty ?? o.featureMap.get(eventType),
    session_id: raw.session_id === NO_SESSION ? undefined : (raw.session_id ?? undefined),
    device: nonEmpty(deviceOf(raw, ua === undefined ? undefined : o.userAgent(ua))),
    geo: nonEmpty(geoOf(raw)),
    user: Object.keys(userProperties).length === 0 ? undefined : { attributes: userProperties },
    properties,
  });
  return { kind: 'activity', event, context, warnings };
}

/** Native field paths -> the Amplitude fields they came from, for the 400's per-field indices. */
const AMPLITUDE_FIELDS: Readonly<Record<string, string>> = {
  event_id: 'insert_id',
  user_id: 'user_id',
  anonymous_id: 'device_id',
  activity: 'event_type',
  feature: 'event_properties',
  timestamp: 'time',
  session_id: 'session_id',
  properties: 'event_properties',
  traits: 'user_properties',
  user: 'user_properties',
  'device.id': 'device_id',
  'device.platform': 'platform',
  'device.os_version': 'os_version',
  'device.app_version': 'app_version',
  device: 'user_agent',
  'geo.country_code': 'country',
  'geo.city': 'city',
  'geo.latitude': 'location_lat',
  'geo.longitude': 'location_lng',
  // A track-only write key sending an identify.
  identify: 'event_type',
};

/**
 * The Amplitude field a validation message ("<field>: <why>", as validate.ts writes them) is about:
 * the native path's nearest mapped prefix, else the path itself.
 */
export function amplitudeFieldOf(message: string): string {
  const colon = message.indexOf(':');
  const path = colon === -1 ? message : message.slice(0, colon);
  const parts = path.split(/[.[]/);
  const two = parts.slice(0, 2).join('.');
  return own(AMPLITUDE_FIELDS, two) ?? own(AMPLITUDE_FIELDS, parts[0] ?? '') ?? path;
}

export interface RejectionFields {
  readonly events_with_invalid_fields: Record<string, number[]>;
  readonly events_with_missing_fields: Record<string, number[]>;
}

/**
 * A 400's per-field event indices, as Amplitude answers them: the SDKs drop every event listed
 * (invalid or missing alike) and resend the others. `refused`: the events this adapter refused
 * itself (mapAmplitude's errors), by index; the rest are named by their validation messages.
 */
export function rejectionFields(
  rejected: ReadonlyArray<{ readonly index: number; readonly errors: readonly string[] }>,
  refused: ReadonlyMap<number, { readonly field: string; readonly missing: boolean }>,
): RejectionFields {
  // Maps, not objects: a field name can come from a sender's key ("__proto__").
  const invalid = new Map<string, number[]>();
  const missing = new Map<string, number[]>();
  for (const r of rejected) {
    const adapter = refused.get(r.index);
    const target = adapter?.missing ? missing : invalid;
    const fields = adapter ? [adapter.field] : [...new Set(r.errors.map(amplitudeFieldOf))];
    for (const f of fields) {
      const list = target.get(f);
      if (list === undefined) target.set(f, [r.index]);
      else list.push(r.index);
    }
  }
  return {
    events_with_invalid_fields: Object.fromEntries(invalid),
    events_with_missing_fields: Object.fromEntries(missing),
  };
}
