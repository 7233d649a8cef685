/**
 * PostHog's capture API (what posthog-node posts to /batch/ and posthog-js to /e/) -> the native
 * event and identify shapes, which then take the same validation and enrichment as native input
 * (intake.ts). Pure: the route (routes/posthog.ts) decodes the body (posthog/body.ts) and hands the
 * envelope and its events here. docs/sdk/posthog.md has the mapping as a table.
 *
 * PostHog folds its SDK context into event properties with a `$` prefix ($os, $browser, $lib, ...):
 * the ones with a column are mapped, a few page fields are kept under Segment's names, and the
 * rest is SDK bookkeeping that is not stored (as a Segment message's context is not). Field checks
 * (ids, lengths, times) are left to validation, so a PostHog event is refused for the same reasons
 * and with the same messages as a native one.
 */

import { EVENT_FIELDS, MAX_NAME_LENGTH } from '../../../schemas/native-api.ts';
import { type ContextOverrides, type Mapped, traitsOf } from '../segment/map.ts';
import { isPlainObject, own } from '../validation/validate.ts';

/** Where an event's feature comes from, tried in the configured order (POSTHOG_FEATURE_FROM). */
export type FeatureSource = 'property' | 'map' | 'path' | 'event';
export const FEATURE_SOURCES: readonly FeatureSource[] = ['property', 'map', 'path', 'event'];

export interface PostHogOptions {
  /** The property that names the feature (FEATURE_PROPERTY, shared with Segment). */
  readonly featureProperty: string;
  /** Activity name ("page_view") or PostHog event name ("$autocapture") -> feature (FEATURE_MAP). */
  readonly featureMap: ReadonlyMap<string, string>;
  readonly featureFrom: readonly FeatureSource[];
}

/** What the mapping needs from the request. */
export interface RequestFacts {
  /** Collector clock at arrival, ms (for events dated by `offset`). */
  readonly receivedAt: number;
  /** The request's sent_at, ms, when it gave a usable one. */
  readonly sentAtMs: number | undefined;
  /** The project token the request authenticated with. */
  readonly key: string | undefined;
}

/** A capture request once unwrapped: the key it carries, its events and its batch send time. */
export interface Envelope {
  /** Read by http/auth.ts as the body's write key: PostHog sends no Authorization header. */
  readonly writeKey: string | undefined;
  readonly events: unknown[];
  readonly sentAt: unknown;
}

const strOrUndef = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const obj = (v: unknown): Record<string, unknown> => (isPlainObject(v) ? v : {});

function compact(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/** The token an event names itself (posthog-js puts it in every event's properties). */
function eventToken(e: unknown): string | undefined {
  const m = obj(e);
  return strOrUndef(m.api_key) ?? strOrUndef(m.token) ?? strOrUndef(obj(m.properties).token);
}

/**
 * The three envelopes PostHog's capture endpoints take: `{api_key, batch, sent_at}` (both SDKs),
 * a bare array of events, or one event. The project token is the body's `api_key` (or `token`),
 * else the first event's.
 */
export function envelopeOf(body: unknown): Envelope | { readonly error: string } {
  if (Array.isArray(body)) return { writeKey: eventToken(body[0]), events: body, sentAt: undefined };
  if (!isPlainObject(body)) return { error: 'body: expected a JSON object or array' };
  if (!Object.hasOwn(body, 'batch'))
    return { writeKey: eventToken(body), events: [body], sentAt: body.sent_at };
  if (!Array.isArray(body.batch)) return { error: 'batch: expected an array' };
  const writeKey = strOrUndef(body.api_key) ?? strOrUndef(body.token) ?? eventToken(body.batch[0]);
  return { writeKey, events: body.batch, sentAt: body.sent_at };
}

/**
 * PostHog's built-in events with a name of their own here (as Segment's page and screen have);
 * other `$` events keep their PostHog names.
 */
const ACTIVITY_NAMES: Readonly<Record<string, string>> = {
  $pageview: 'page_view',
  $screen: 'screen_view',
  $pageleave: 'page_leave',
  $autocapture: 'autocapture',
  $rageclick: 'rage_click',
  $dead_click: 'dead_click',
  $exception: 'exception',
  $groupidentify: 'group',
};

/**
 * Payloads of products the collector does not take (the project config it serves turns them off
 * in posthog-js, routes/posthog.ts): refused per event rather than counted as activity.
 */
const UNSUPPORTED_EVENTS: Readonly<Record<string, string>> = {
  $snapshot: 'session recordings are not supported',
  $snapshot_items: 'session recordings are not supported',
  $$heatmap: 'heatmaps are not supported',
};

/** PostHog's page and click context kept in the event's properties, under plain names. */
const KEPT_PROPERTIES: Readonly<Record<string, string>> = {
  $current_url: 'url',
  $pathname: 'path',
  $host: 'host',
  $referrer: 'referrer',
  $screen_name: 'name',
  $event_type: 'event_type',
  $el_text: 'element_text',
};

/** Properties that are envelope, not event data (the project token must never be stored). */
const ENVELOPE_PROPERTIES = new Set(['token', 'api_key', 'distinct_id', 'alias']);

function propertiesOf(p: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p)) {
    if (k.startsWith('$') || ENVELOPE_PROPERTIES.has(k)) continue;
    out[k] = v;
  }
  for (const [k, name] of Object.entries(KEPT_PROPERTIES)) {
    if (p[k] !== undefined && p[k] !== null && !Object.hasOwn(out, name)) out[name] = p[k];
  }
  return out;
}

const DEVICE_TYPES = new Set(['desktop', 'mobile', 'tablet', 'tv', 'console', 'wearable']);
/** PostHog's client libraries ($lib) that name their platform. */
const LIB_PLATFORMS: Readonly<Record<string, string>> = {
  web: 'web',
  'posthog-ios': 'ios',
  'posthog-android': 'android',
};

const versionOf = (v: unknown): string | undefined =>
  typeof v === 'number' && Number.isFinite(v) ? String(v) : strOrUndef(v);

/**
 * The device from PostHog's $-properties. Given fields replace the User-Agent derivation
 * (enrichment/records.ts), so either a whole device (posthog-js, mobile SDKs) or none
 * (posthog-node, whose events carry none: the User-Agent is parsed instead).
 */
function deviceOf(p: Record<string, unknown>): Record<string, unknown> | undefined {
  const os = strOrUndef(p.$os);
  const osName = os?.toLowerCase().replace(/\s+/g, '');
  const type = strOrUndef(p.$device_type)?.toLowerCase();
  const lib = strOrUndef(p.$lib);
  const described = compact({
    id: strOrUndef(p.$device_id),
    type: type !== undefined && DEVICE_TYPES.has(type) ? type : undefined,
    os_version: os ? [os, versionOf(p.$os_version)].filter(Boolean).join(' ') : undefined,
    app_version: versionOf(p.$app_version),
    browser_name: strOrUndef(p.$browser),
    browser_version: versionOf(p.$browser_version),
  });
  if (Object.keys(described).length === 0) return undefined;
  // A browser is the web platform whatever OS it runs on (as enrichment/user-agent.ts decides).
  const platform =
    (lib === undefined ? undefined : own(LIB_PLATFORMS, lib)) ??
    (osName === 'ios' || osName === 'android' ? osName : described.browser_name ? 'web' : undefined);
  return compact({ ...described, platform });
}

/** The first path segment of the page ($pathname, else $current_url's path) or the screen name. */
function pathFeature(p: Record<string, unknown>): string | undefined {
  let path = strOrUndef(p.$pathname);
  if (path === undefined && typeof p.$current_url === 'string' && URL.canParse(p.$current_url))
    path = new URL(p.$current_url).pathname;
  const f = path?.split('/').find((s) => s !== '') ?? strOrUndef(p.$screen_name);
  // A derived value must not cost the event: one too long for the column is left out.
  return f !== undefined && f.length <= MAX_NAME_LENGTH ? f : undefined;
}

function featureOf(
  activity: string,
  eventName: string,
  p: Record<string, unknown>,
  o: PostHogOptions,
): string | undefined {
  for (const source of o.featureFrom) {
    let f: string | undefined;
    if (source === 'property') f = strOrUndef(p[o.featureProperty]);
    else if (source === 'map') f = o.featureMap.get(activity) ?? o.featureMap.get(eventName);
    // PostHog's own events ($pageview, $autocapture) name no feature of the product.
    else if (source === 'event') f = eventName.startsWith('$') ? undefined : eventName;
    else f = pathFeature(p);
    if (f !== undefined) return f;
  }
  return undefined;
}

/** `$set_once` under `$set` (the contract has no set-once: a key both name takes `$set`'s value). */
function mergedTraits(e: Record<string, unknown>, p: Record<string, unknown>): Record<string, unknown> {
  const merged = { ...obj(p.$set_once), ...obj(e.$set_once), ...obj(p.$set), ...obj(e.$set) };
  // posthog-js adds its own to identify and events: `$` ones ($initial_referrer, $os, ...), and
  // every campaign parameter it looks for (utm_source, gclid, ...), null when the URL has none.
  // Both are SDK bookkeeping, not profile traits; a null trait clears nothing here anyway.
  return traitsOf(
    Object.fromEntries(Object.entries(merged).filter(([k, v]) => !k.startsWith('$') && v !== null)),
  );
}

const USER_FIELDS = EVENT_FIELDS.user.fields;

/** Traits riding on an activity -> its user group: profile columns as such, the rest attributes. */
function userOf(traits: Record<string, unknown>): Record<string, unknown> | undefined {
  const user: Record<string, unknown> = {};
  const attributes: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(traits)) {
    if (k !== 'attributes' && Object.hasOwn(USER_FIELDS, k)) user[k] = v;
    else attributes[k] = v;
  }
  if (Object.keys(attributes).length > 0) user.attributes = attributes;
  return Object.keys(user).length === 0 ? undefined : user;
}

/** `timestamp` as sent, else one from `offset` (ms before sending, older SDKs), else none. */
function timestampOf(raw: Record<string, unknown>, r: RequestFacts): unknown {
  if (raw.timestamp !== undefined && raw.timestamp !== null) return raw.timestamp;
  const offset = raw.offset;
  if (typeof offset !== 'number' || !Number.isFinite(offset) || offset < 0) return undefined;
  // In the client's clock, like a timestamp: the request's sent_at then corrects the skew.
  const t = new Date((r.sentAtMs ?? r.receivedAt) - offset);
  return Number.isNaN(t.getTime()) ? undefined : t.toISOString();
}

/** PostHog takes numeric distinct ids as their decimal string. */
const idOf = (v: unknown): unknown => (typeof v === 'number' && Number.isFinite(v) ? String(v) : v);

/** Maps one PostHog event (posthog-js puts distinct_id in properties, posthog-node at the top). */
export function mapPostHog(raw: unknown, o: PostHogOptions, r: RequestFacts): Mapped {
  if (!isPlainObject(raw)) return { kind: 'error', message: 'event: expected an object' };
  const name = raw.event;
  if (typeof name !== 'string' || name === '')
    return { kind: 'error', message: 'event: required (the event name, a string)' };
  const unsupported = own(UNSUPPORTED_EVENTS, name);
  if (unsupported !== undefined) return { kind: 'error', message: `event: ${name}: ${unsupported}` };
  if (raw.properties !== undefined && raw.properties !== null && !isPlainObject(raw.properties))
    return { kind: 'error', message: 'properties: expected an object' };
  const token = eventToken(raw);
  // One request, one project: an event naming another token would be filed under this one.
  if (token !== undefined && r.key !== undefined && token !== r.key)
    return { kind: 'error', message: "token: not the request's project token" };
  const p = obj(raw.properties);
  const distinctId = idOf(raw.distinct_id ?? p.distinct_id);
  if (distinctId === undefined || distinctId === null || distinctId === '')
    return { kind: 'error', message: 'distinct_id: required' };
  const context: ContextOverrides = {
    ip: strOrUndef(p.$ip),
    userAgent: strOrUndef(p.$raw_user_agent),
    sentAt: undefined,
  };
  const common = { event_id: raw.uuid ?? undefined, timestamp: timestampOf(raw, r) };

  if (name === '$identify' || name === '$set') {
    const anon = name === '$identify' ? idOf(p.$anon_distinct_id ?? raw.$anon_distinct_id) : undefined;
    const identify = compact({
      ...common,
      user_id: distinctId,
      anonymous_id: anon === distinctId || anon === null || anon === '' ? undefined : anon,
      traits: mergedTraits(raw, p),
    });
    return { kind: 'identify', identify, context };
  }
  if (name === '$create_alias') {
    // alias({distinctId, alias}): `alias` is another id of distinct_id's person, the earlier one.
    const identify = compact({ ...common, user_id: distinctId });
    return { kind: 'alias', identify, previousId: idOf(p.alias ?? raw.alias), context };
  }
  if (name === '$groupidentify' && distinctId === `$${String(p.$group_type)}_${String(p.$group_key)}`) {
    // posthog-node's groupIdentify without a user: counting the placeholder would add a user.
    return {
      kind: 'error',
      message:
        'distinct_id: a group placeholder ($<type>_<key>); group profiles without a user are not stored',
    };
  }

  const properties = propertiesOf(p);
  const activity = own(ACTIVITY_NAMES, name) ?? name;
  if (name === '$groupidentify')
    Object.assign(
      properties,
      compact({ group_type: p.$group_type, group_key: p.$group_key, group_traits: p.$group_set }),
    );
  // Anonymous: posthog-js says so on every event ($is_identified); server SDKs say nothing, and
  // their distinct id is the user. An identified browser event still carries the anonymous id it
  // had before identify ($device_id), as Segment's browser events carry anonymousId.
  const anonymous = p.$is_identified === false;
  const deviceId = idOf(p.$device_id);
  const event = compact({
    ...common,
    user_id: anonymous ? undefined : distinctId,
    anonymous_id: anonymous ? distinctId : deviceId !== distinctId ? strOrUndef(deviceId) : undefined,
    activity,
    feature: featureOf(activity, name, p, o),
    // A UUID string (validation maps it to a stable integer and keeps the string).
    session_id: p.$session_id ?? undefined,
    device: deviceOf(p),
    user: userOf(mergedTraits(raw, p)),
    properties,
  });
  return { kind: 'activity', event, context };
}
