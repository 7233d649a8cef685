/**
 * Segment's message spec (https://segment.com/docs/connections/spec/) -> the native event and
 * identify shapes, which then go through the same validation and enrichment as native input. Only
 * fields with a home are read; the rest of a Segment message (integrations, context.library, ...)
 * is SDK bookkeeping, so unlike native input it is not warned about.
 */
import { nameUuid } from '../enrichment/event-id.ts';
import { isPlainObject, own } from '../validation/validate.ts';

export type SegmentType = 'track' | 'page' | 'screen' | 'identify' | 'group' | 'alias';
export const SEGMENT_TYPES: readonly SegmentType[] = [
  'track',
  'page',
  'screen',
  'identify',
  'group',
  'alias',
];

export interface SegmentOptions {
  /** The property that names the feature (FEATURE_PROPERTY). */
  readonly featureProperty: string;
  /** Event name -> feature for events that do not carry the property (FEATURE_MAP). */
  readonly featureMap: ReadonlyMap<string, string>;
}

/** Per-message overrides of the request's context (a server SDK relays its end user's IP and UA). */
export interface ContextOverrides {
  readonly ip: string | undefined;
  readonly userAgent: string | undefined;
  readonly sentAt: string | undefined;
}

export type Mapped =
  | { readonly kind: 'activity'; readonly event: Record<string, unknown>; readonly context: ContextOverrides }
  | {
      readonly kind: 'identify';
      readonly identify: Record<string, unknown>;
      readonly context: ContextOverrides;
    }
  | {
      readonly kind: 'alias';
      readonly identify: Record<string, unknown>;
      readonly previousId: unknown;
      readonly context: ContextOverrides;
    }
  | { readonly kind: 'error'; readonly message: string };

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Segment message ids are free-form ("node-next-1700000000000-<uuid>"); event_id is a UUID. A
 * non-UUID id maps to a name-based UUID (v5 layout over SHA-1), so a retried message keeps its id.
 */
export function eventIdFor(messageId: unknown): string | undefined {
  if (typeof messageId !== 'string' || messageId === '') return undefined;
  if (UUID_RE.test(messageId)) return messageId.toLowerCase();
  return nameUuid('segment-message-id:', messageId);
}

const obj = (v: unknown): Record<string, unknown> => (isPlainObject(v) ? v : {});
const strOrUndef = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** Drops undefined values so the validator sees only what the sender gave. */
function compact(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

// Segment's reserved traits with a column of their own.
const TRAIT_ALIASES: Readonly<Record<string, string>> = {
  createdAt: 'registration_date',
  created_at: 'registration_date',
  birthday: 'birth_date',
};

/** Traits with Segment's reserved names moved to their columns (PostHog's $set shares them). */
export function traitsOf(raw: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj(raw))) {
    const name = own(TRAIT_ALIASES, k) ?? k;
    // Segment's birthday is often a full date-time; the column is a date.
    out[name] = name === 'birth_date' && typeof v === 'string' ? v.slice(0, 10) : v;
  }
  return out;
}

const RUDDERSTACK_JS_NAMESPACE = 'com.rudderlabs.javascript';

function deviceOf(context: Record<string, unknown>): Record<string, unknown> {
  const device = obj(context.device);
  const os = obj(context.os);
  // RudderStack's browser SDK names itself in context.app (the page is not an app): that version
  // is the SDK's, and as a device field it would also hide the User-Agent's (records.ts).
  const app = obj(context.app).namespace === RUDDERSTACK_JS_NAMESPACE ? {} : obj(context.app);
  const osName = strOrUndef(os.name);
  const platform = strOrUndef(device.type) ?? (osName ? osName.toLowerCase().replace(/\s+/g, '') : undefined);
  const mobile = platform === 'ios' || platform === 'android';
  return compact({
    id: strOrUndef(device.id),
    type: mobile ? 'mobile' : undefined,
    platform: mobile ? platform : undefined,
    os_version: osName ? [osName, strOrUndef(os.version)].filter(Boolean).join(' ') : undefined,
    app_version: strOrUndef(app.version),
  });
}

/**
 * Segment's context.timezone is an IANA name ("Europe/Berlin"); RudderStack's browser SDK sends a
 * GMT offset ("GMT+0530", or "NA"). Only names are kept: an offset is not a zone, and any geo field
 * given turns off the IP lookup (records.ts), which would cost those events their country.
 */
function ianaZoneOrUndef(v: unknown): string | undefined {
  return typeof v === 'string' && /^(?:UTC|[A-Za-z_]+(?:\/[A-Za-z0-9_+-]+)+)$/.test(v) ? v : undefined;
}

function geoOf(context: Record<string, unknown>): Record<string, unknown> {
  const loc = obj(context.location);
  const country = strOrUndef(loc.country);
  return compact({
    // Segment's location.country is often a name ("United States"); only codes have a column.
    country_code: country && /^[A-Za-z]{2}$/.test(country) ? country : undefined,
    city: strOrUndef(loc.city),
    latitude: typeof loc.latitude === 'number' ? loc.latitude : undefined,
    longitude: typeof loc.longitude === 'number' ? loc.longitude : undefined,
    timezone: ianaZoneOrUndef(context.timezone),
  });
}

function nonEmpty(o: Record<string, unknown>): Record<string, unknown> | undefined {
  return Object.keys(o).length === 0 ? undefined : o;
}

/** The context fields mapSegment reads; the rest of a context (library, page, campaign, ...) is ignored. */
export const SEGMENT_CONTEXT_KEYS = [
  'device',
  'os',
  'app',
  'location',
  'timezone',
  'ip',
  'userAgent',
  'traits',
  'sessionId',
] as const;

/**
 * A message's context over its batch's: per field mapSegment reads, the message's value, else the
 * batch's. Only those fields: spreading a whole batch context into each of its messages cost
 * (context keys x messages), which a client could make large with one body.
 */
export function messageContext(batch: unknown, message: unknown): Record<string, unknown> {
  const b = obj(batch);
  const m = obj(message);
  const out: Record<string, unknown> = {};
  for (const k of SEGMENT_CONTEXT_KEYS) {
    const v = Object.hasOwn(m, k) ? m[k] : Object.hasOwn(b, k) ? b[k] : undefined;
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** Maps one Segment message; `type` is the path's type for /v1/track etc., else the message's. */
export function mapSegment(raw: unknown, pathType: SegmentType | undefined, o: SegmentOptions): Mapped {
  if (!isPlainObject(raw)) return { kind: 'error', message: 'message: expected an object' };
  const type = pathType ?? raw.type;
  if (typeof type !== 'string' || !(SEGMENT_TYPES as readonly string[]).includes(type)) {
    return { kind: 'error', message: `type: expected one of ${SEGMENT_TYPES.join(', ')}` };
  }
  const context = obj(raw.context);
  const overrides: ContextOverrides = {
    ip: strOrUndef(context.ip),
    userAgent: strOrUndef(context.userAgent),
    sentAt: strOrUndef(raw.sentAt),
  };
  const common = {
    event_id: raw.messageId === undefined ? undefined : (eventIdFor(raw.messageId) ?? raw.messageId),
    // RudderStack's browser SDK sends "" for a user not identified yet: no user, not a bad one.
    user_id: raw.userId === '' ? undefined : (raw.userId ?? undefined),
    timestamp: raw.originalTimestamp ?? raw.timestamp ?? undefined,
  };
  if (type === 'identify' || type === 'alias') {
    const identify = compact({
      ...common,
      anonymous_id: type === 'identify' ? (raw.anonymousId ?? undefined) : undefined,
      traits: type === 'identify' ? traitsOf(raw.traits ?? context.traits) : undefined,
    });
    return type === 'identify'
      ? { kind: 'identify', identify, context: overrides }
      : { kind: 'alias', identify, previousId: raw.previousId, context: overrides };
  }
  const properties = { ...obj(raw.properties) };
  let activity: unknown;
  if (type === 'track') activity = raw.event;
  else if (type === 'page' || type === 'screen') {
    activity = type === 'page' ? 'page_view' : 'screen_view';
    if (raw.name !== undefined) properties.name = raw.name;
    if (raw.category !== undefined) properties.category = raw.category;
  } else {
    activity = 'group';
    properties.group_id = raw.groupId;
    if (raw.traits !== undefined) properties.group_traits = raw.traits;
  }
  const mapped = typeof activity === 'string' ? o.featureMap.get(activity) : undefined;
  const feature = strOrUndef(properties[o.featureProperty]) ?? mapped;
  const event = compact({
    ...common,
    anonymous_id: raw.anonymousId ?? undefined,
    activity,
    feature,
    // A number or a string id (validation maps strings to a stable integer).
    session_id: context.sessionId ?? undefined,
    device: nonEmpty(deviceOf(context)),
    geo: nonEmpty(geoOf(context)),
    properties,
  });
  return { kind: 'activity', event, context: overrides };
}
