/**
 * Pure validation of native events and identifies against the tables in spec.ts. A bad event is a
 * value (`{ ok: false, errors }`), never an exception: the functions here must not throw for any
 * input (validate.property.test.ts checks that with arbitrary JSON).
 */
import { hash } from 'node:crypto';
import {
  EVENT_FIELDS,
  type FieldSpec,
  type GroupSpec,
  IDENTIFY_FIELDS,
  IDENTIFY_TRAITS,
  MAX_ID_LENGTH,
  MAX_NAME_LENGTH,
  MAX_TEXT_LENGTH,
} from '../../../schemas/native-api.ts';
import { CONTRACT, NO_FEATURE } from '../../../schemas/records.ts';
import { DAY_MS } from '../../lib/time.ts';

/** Bounded set of rejection reasons (a metric label). */
export type RejectReason =
  | 'invalid_field'
  | 'missing_identity'
  | 'missing_field'
  | 'too_large'
  | 'too_deep'
  | 'too_many_keys'
  | 'forbidden_key'
  /** The write key's scope does not allow it (a track-only key sending an identify). */
  | 'not_allowed_for_key'
  | 'timestamp_in_future'
  | 'timestamp_too_old'
  | 'not_an_object'
  /** A record the validator let through that Avro still refused: a contract gap, kept per event. */
  | 'not_encodable';

export interface Problem {
  readonly reason: RejectReason;
  /** "<field>: <why>" */
  readonly message: string;
}

export interface Limits {
  readonly maxEventBytes: number;
  readonly maxDepth: number;
  readonly maxKeys: number;
  /** Events older than this (after skew correction) are rejected. */
  readonly maxAgeMs: number;
  /** Events further in the future than this (after skew correction) are rejected. */
  readonly maxFutureMs: number;
  /** A client clock off by more than this is not trusted for correction (the event is kept). */
  readonly maxSkewCorrectionMs: number;
}

export interface Clock {
  /** Collector time the request arrived, ms since epoch. */
  readonly receivedAt: number;
  /** Client time the request was sent, ms since epoch, when the sender said. */
  readonly sentAt?: number | undefined;
}

/** A validated value per field, normalized: timestamps in ms, dates in epoch days. */
export type Values = Record<string, unknown>;

export interface ValidEvent {
  readonly event_id: string | undefined;
  readonly user_id: string | undefined;
  readonly anonymous_id: string | undefined;
  readonly activity: string;
  readonly feature: string;
  readonly original_timestamp: number | undefined;
  /** original_timestamp corrected for clock skew, or receivedAt when absent. */
  readonly activity_timestamp: number;
  readonly session_id: number | undefined;
  /** A session id sent as a string, as sent (session_id holds its stable integer). */
  readonly session_key: string | undefined;
  readonly duration_seconds: number | undefined;
  readonly device: Values;
  readonly geo: Values;
  readonly user: Values;
  readonly properties: Record<string, unknown>;
  readonly details: ReadonlyArray<{ readonly type: string; readonly payload: unknown }>;
  /** Unknown top-level fields: kept (in activity_metadata) and warned about, never silently lost. */
  readonly unknown: Record<string, unknown>;
}

export interface ValidIdentify {
  readonly event_id: string | undefined;
  readonly user_id: string;
  readonly anonymous_id: string | undefined;
  readonly identified_at: number;
  readonly traits: Values;
  /** Traits without a column of their own (user_attributes). */
  readonly attributes: Record<string, unknown>;
}

export type Result<T> =
  | { readonly ok: true; readonly value: T; readonly warnings: readonly string[] }
  | { readonly ok: false; readonly problems: readonly Problem[] };

/**
 * A field's verdict. `value` undefined with a `warning`: a well-formed value outside a 'drop'
 * field's range (spec.ts FieldSpec.outOfRange), left out of the record.
 */
export type FieldResult = { ok: true; value: unknown; warning?: string } | { ok: false; problem: Problem };

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// ISO-8601 as RFC 3339 profiles it: a date, optionally a time that then needs a zone. A zone-less
// time would be read in the collector's own zone, which is never what the sender meant.
const DATE_TIME_RE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?([Zz]|[+-]\d{2}:?\d{2}))?$/;
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
const COUNTRY_RE = /^[A-Za-z]{2}$/;
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Table lookup by an input key. Plain indexing would find Object.prototype members for keys like
 * "toString" (the property test found exactly that), so only own entries count.
 */
export function own<T>(table: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(table, key) ? table[key] : undefined;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const bad = (reason: RejectReason, path: string, why: string): FieldResult => ({
  ok: false,
  problem: { reason, message: `${path}: ${why}` },
});

/**
 * ms since epoch of a UTC calendar day. Not Date.UTC: it reads years 0..99 as 1900..1999, so
 * "0001-01-01" would silently become 1901-01-01.
 */
function utcDayMs(y: number, m: number, d: number): number {
  const t = new Date(0);
  t.setUTCFullYear(y, m - 1, d);
  return t.getTime();
}

/** ms since epoch from an ISO-8601 string, or undefined. Fractions beyond ms are truncated. */
export function parseTimestamp(raw: string): number | undefined {
  const m = DATE_TIME_RE.exec(raw);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  if (!validDate(Number(y), Number(mo), Number(d))) return undefined;
  if (h === undefined) return utcDayMs(Number(y), Number(mo), Number(d));
  if (Number(h) > 23 || Number(mi) > 59 || Number(s ?? 0) > 59) return undefined;
  const ms = (frac ?? '').padEnd(3, '0').slice(0, 3);
  const z = zone === 'z' || zone === 'Z' ? 'Z' : (zone ?? 'Z').replace(/^([+-]\d{2})(\d{2})$/, '$1:$2');
  const t = Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${s ?? '00'}.${ms}${z}`);
  return Number.isFinite(t) ? t : undefined;
}

function validDate(y: number, m: number, d: number): boolean {
  if (m < 1 || m > 12 || d < 1) return false;
  return d <= new Date(utcDayMs(y, m + 1, 0)).getUTCDate();
}

const isoDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/**
 * Applies a field's [min, max] to a normalized value: in range, the value; out of range, the
 * field's policy (reject the event, or drop the value with a warning). `unit` renders the bounds.
 */
function inRange(spec: FieldSpec, value: number, path: string, unit: (n: number) => string): FieldResult {
  const { min, max } = spec;
  if ((min === undefined || value >= min) && (max === undefined || value <= max)) return { ok: true, value };
  const range = `between ${min === undefined ? '-∞' : unit(min)} and ${max === undefined ? '∞' : unit(max)}`;
  if (spec.outOfRange === 'drop')
    return { ok: true, value: undefined, warning: `${path}: not ${range}; ignored` };
  return bad('invalid_field', path, `must be ${range}`);
}

/**
 * A string field. Unpaired UTF-16 surrogates have no UTF-8 form: avsc would write them as
 * surrogate bytes (or U+FFFD, depending on the string's length), so the stored value would not be
 * what was sent. In an id (an identity, a dedup key) that is refused; in a name or text it becomes
 * U+FFFD, as any UTF-8 decoder would show it.
 */
function checkString(
  v: unknown,
  path: string,
  max: number,
  o: { allowEmpty: boolean; identity: boolean },
): FieldResult {
  if (typeof v !== 'string') return bad('invalid_field', path, `expected a string, got ${typeName(v)}`);
  if (!o.allowEmpty && v.trim() === '') return bad('invalid_field', path, 'must not be empty');
  if (v.length > max) return bad('invalid_field', path, `longer than ${max} characters`);
  if (v.isWellFormed()) return { ok: true, value: v };
  if (o.identity)
    return bad('invalid_field', path, 'contains an unpaired UTF-16 surrogate (not valid Unicode)');
  return { ok: true, value: v.toWellFormed() };
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/**
 * The session column is an integer: a string session id (PostHog and many web SDKs send UUIDs) is
 * stored as a stable 52-bit integer of its SHA-1, so the same string is the same session across
 * events and requests, and distinct ids collide with probability ~n^2 / 2^53.
 */
export function sessionNumber(id: string): number {
  return Number.parseInt(hash('sha1', id, 'hex').slice(0, 13), 16);
}

/** Validates and normalizes one field's value. */
export function checkField(spec: FieldSpec, v: unknown, path: string): FieldResult {
  switch (spec.kind) {
    case 'uuid':
      if (typeof v !== 'string' || !UUID_RE.test(v)) return bad('invalid_field', path, 'not a UUID');
      return { ok: true, value: v.toLowerCase() };
    case 'id':
      return checkString(v, path, MAX_ID_LENGTH, { allowEmpty: false, identity: true });
    case 'name':
      return checkString(v, path, MAX_NAME_LENGTH, { allowEmpty: false, identity: false });
    case 'text':
      return checkString(v, path, MAX_TEXT_LENGTH, { allowEmpty: true, identity: false });
    case 'country':
      if (typeof v !== 'string' || !COUNTRY_RE.test(v))
        return bad('invalid_field', path, 'not an ISO 3166-1 alpha-2 country code');
      return { ok: true, value: v.toUpperCase() };
    case 'timestamp': {
      const t = typeof v === 'string' ? parseTimestamp(v) : undefined;
      if (t === undefined) return bad('invalid_field', path, 'not an ISO-8601 date-time with a time zone');
      return inRange(spec, t, path, (ms) => new Date(ms).toISOString());
    }
    case 'date': {
      const m = typeof v === 'string' ? DATE_RE.exec(v) : null;
      if (!m || !validDate(Number(m[1]), Number(m[2]), Number(m[3])))
        return bad('invalid_field', path, 'not a YYYY-MM-DD date');
      const days = Math.floor(utcDayMs(Number(m[1]), Number(m[2]), Number(m[3])) / DAY_MS);
      return inRange(spec, days, path, (d) => isoDay(d * DAY_MS));
    }
    case 'session':
      // A string session id is an id like any other; validated here, mapped where the event is built.
      if (typeof v === 'string')
        return checkString(v, path, MAX_ID_LENGTH, { allowEmpty: false, identity: true });
      return checkField({ ...spec, kind: 'integer' }, v, path);
    case 'integer':
    case 'number': {
      const what = spec.kind === 'integer' ? 'an integer' : 'a finite number';
      const range =
        spec.min !== undefined && spec.max !== undefined ? ` between ${spec.min} and ${spec.max}` : '';
      // JSON.parse turns 1e400 into Infinity: a number to JSON, but not one any column can hold.
      if (typeof v !== 'number')
        return bad('invalid_field', path, `must be ${what}${range}, got ${typeName(v)}`);
      if (!Number.isFinite(v) || (spec.kind === 'integer' && !Number.isInteger(v)))
        return bad('invalid_field', path, `must be ${what}${range}, got ${v}`);
      return inRange(spec, v, path, String);
    }
    case 'boolean':
      if (typeof v !== 'boolean') return bad('invalid_field', path, `expected a boolean, got ${typeName(v)}`);
      return { ok: true, value: v };
    case 'object':
      if (!isPlainObject(v)) return bad('invalid_field', path, `expected an object, got ${typeName(v)}`);
      return { ok: true, value: v };
    case 'details': {
      if (!Array.isArray(v)) return bad('invalid_field', path, `expected an array, got ${typeName(v)}`);
      const out: Array<{ type: string; payload: unknown }> = [];
      for (const [i, d] of v.entries()) {
        if (!isPlainObject(d)) return bad('invalid_field', `${path}[${i}]`, 'expected an object');
        const t = checkString(d.type, `${path}[${i}].type`, MAX_NAME_LENGTH, {
          allowEmpty: false,
          identity: false,
        });
        if (!t.ok) return t;
        for (const k of Object.keys(d)) {
          if (k !== 'type' && k !== 'payload')
            return bad('invalid_field', `${path}[${i}].${k}`, 'unknown field');
        }
        out.push({ type: t.value as string, payload: d.payload ?? null });
      }
      return { ok: true, value: out };
    }
  }
}

/**
 * Structural caps over the whole value (depth, key count, prototype-polluting keys), checked before
 * anything else looks inside. Iterative, so no input can exhaust the stack.
 */
export function checkStructure(
  root: unknown,
  limits: Pick<Limits, 'maxDepth' | 'maxKeys'>,
): Problem | undefined {
  const stack: Array<{ v: unknown; path: string; depth: number }> = [{ v: root, path: '', depth: 0 }];
  let keys = 0;
  while (stack.length > 0) {
    const { v, path, depth } = stack.pop() as { v: unknown; path: string; depth: number };
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= limits.maxDepth) {
      return {
        reason: 'too_deep',
        message: `${path || 'event'}: nested deeper than ${limits.maxDepth} levels`,
      };
    }
    if (Array.isArray(v)) {
      keys += v.length;
      for (let i = 0; i < v.length; i++) stack.push({ v: v[i], path: `${path}[${i}]`, depth: depth + 1 });
    } else {
      for (const k of Object.keys(v)) {
        const p = path === '' ? k : `${path}.${k}`;
        if (FORBIDDEN_KEYS.has(k)) return { reason: 'forbidden_key', message: `${p}: forbidden key` };
        keys++;
        stack.push({ v: (v as Record<string, unknown>)[k], path: p, depth: depth + 1 });
      }
    }
    if (keys > limits.maxKeys) {
      return { reason: 'too_many_keys', message: `event: more than ${limits.maxKeys} keys and array items` };
    }
  }
  return undefined;
}

function checkGroup(
  spec: GroupSpec,
  v: unknown,
  path: string,
  problems: Problem[],
  warnings: string[],
): Values {
  const out: Values = {};
  if (!isPlainObject(v)) {
    problems.push({ reason: 'invalid_field', message: `${path}: expected an object, got ${typeName(v)}` });
    return out;
  }
  for (const [k, raw] of Object.entries(v)) {
    const fs = own(spec.fields, k);
    if (fs === undefined) {
      warnings.push(`${path}.${k}: unknown field (ignored)`);
      continue;
    }
    if (raw === null || raw === undefined) continue;
    accept(checkField(fs, raw, `${path}.${k}`), k, out, problems, warnings);
  }
  return out;
}

/** Files a field's verdict: its value into `into`, or its problem, or its warning. */
function accept(r: FieldResult, key: string, into: Values, problems: Problem[], warnings: string[]): void {
  if (!r.ok) {
    problems.push(r.problem);
    return;
  }
  if (r.warning !== undefined) warnings.push(r.warning);
  if (r.value !== undefined) into[key] = r.value;
}

/**
 * How many times longer JSON.stringify's UTF-8 can be than the JSON text its value was parsed from.
 * Strings, keys and literals never grow (the source had to escape at least what JSON.stringify
 * escapes, and `\u00e9` only shrinks); whitespace and duplicate keys only shrink. Only a number
 * written with an exponent grows: "1e20" (4 bytes) becomes "100000000000000000000" (21), and no
 * number serialises to more than 25 bytes. Such a token takes at least 3 bytes plus a separator,
 * so the text grows at most 23 bytes per 4, below 7 times its size.
 */
export const MAX_RESERIALIZED_GROWTH = 7;

/**
 * The structural and size checks shared by events and identifies. `sourceBytes`: the size of the
 * JSON text `v` was parsed from (the whole request body `v` is part of). Measuring an event costs a
 * JSON.stringify as large as the event; a body that small cannot hold an event over the limit, so
 * it is not measured.
 */
function precheck(v: unknown, limits: Limits, sourceBytes: number | undefined): Problem | undefined {
  if (!isPlainObject(v))
    return { reason: 'not_an_object', message: `event: expected an object, got ${typeName(v)}` };
  const structural = checkStructure(v, limits);
  if (structural) return structural;
  if (sourceBytes !== undefined && sourceBytes * MAX_RESERIALIZED_GROWTH <= limits.maxEventBytes)
    return undefined;
  const bytes = Buffer.byteLength(JSON.stringify(v));
  if (bytes > limits.maxEventBytes) {
    return {
      reason: 'too_large',
      message: `event: ${bytes} bytes exceeds the ${limits.maxEventBytes}-byte limit`,
    };
  }
  return undefined;
}

/**
 * Applies clock-skew correction (timestamp + (receivedAt - sentAt), the Segment/PostHog rule) and
 * the age/future window. Returns the corrected time or a problem.
 */
export function correctTime(
  original: number | undefined,
  clock: Clock,
  limits: Limits,
  path: string,
  warnings: string[],
): { ok: true; value: number } | { ok: false; problem: Problem } {
  if (original === undefined) return { ok: true, value: clock.receivedAt };
  let t = original;
  if (clock.sentAt !== undefined) {
    const skew = clock.receivedAt - clock.sentAt;
    if (Math.abs(skew) <= limits.maxSkewCorrectionMs) t = original + skew;
    else warnings.push(`sent_at: client clock off by ${Math.round(skew / 1000)} s; ${path} not corrected`);
  }
  if (t > clock.receivedAt + limits.maxFutureMs || t > CONTRACT.maxTimeMs) {
    return {
      ok: false,
      problem: {
        reason: 'timestamp_in_future',
        message: `${path}: more than ${limits.maxFutureMs / 3_600_000} h in the future`,
      },
    };
  }
  if (t < clock.receivedAt - limits.maxAgeMs || t < CONTRACT.minActivityTimeMs) {
    return {
      ok: false,
      problem: {
        reason: 'timestamp_too_old',
        message: `${path}: older than ${Math.round(limits.maxAgeMs / DAY_MS)} days`,
      },
    };
  }
  return { ok: true, value: t };
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);

/** `sourceBytes`: see precheck (absent when `v` was built rather than parsed, as API mappings do). */
export function validateEvent(
  v: unknown,
  clock: Clock,
  limits: Limits,
  sourceBytes?: number,
): Result<ValidEvent> {
  const pre = precheck(v, limits, sourceBytes);
  if (pre) return { ok: false, problems: [pre] };
  const e = v as Record<string, unknown>;
  const problems: Problem[] = [];
  const warnings: string[] = [];
  const values: Values = {};
  const groups: Record<string, Values> = { device: {}, geo: {}, user: {} };
  const unknown: Record<string, unknown> = {};
  for (const [k, raw] of Object.entries(e)) {
    const spec = own<FieldSpec | GroupSpec>(EVENT_FIELDS, k);
    if (spec === undefined) {
      unknown[k] = raw;
      warnings.push(`${k}: unknown field (kept in properties._unknown)`);
      continue;
    }
    if (raw === null || raw === undefined) continue;
    if (spec.kind === 'group') groups[k] = checkGroup(spec, raw, k, problems, warnings);
    else accept(checkField(spec, raw, k), k, values, problems, warnings);
  }
  if (
    values.user_id === undefined &&
    values.anonymous_id === undefined &&
    !problems.some((p) => p.message.startsWith('user_id') || p.message.startsWith('anonymous_id'))
  ) {
    problems.push({ reason: 'missing_identity', message: 'user_id: required (user_id or anonymous_id)' });
  }
  if (values.activity === undefined && !problems.some((p) => p.message.startsWith('activity:'))) {
    problems.push({ reason: 'missing_field', message: 'activity: required' });
  }
  const original = num(values.timestamp);
  const time = correctTime(original, clock, limits, 'timestamp', warnings);
  if (!time.ok) problems.push(time.problem);
  if (problems.length > 0 || !time.ok) return { ok: false, problems };
  return {
    ok: true,
    warnings,
    value: {
      event_id: str(values.event_id),
      user_id: str(values.user_id),
      anonymous_id: str(values.anonymous_id),
      activity: str(values.activity) ?? '',
      feature: str(values.feature) ?? NO_FEATURE,
      original_timestamp: original,
      activity_timestamp: time.value,
      session_id:
        typeof values.session_id === 'string' ? sessionNumber(values.session_id) : num(values.session_id),
      session_key: str(values.session_id),
      duration_seconds: num(values.duration_seconds),
      device: groups.device ?? {},
      geo: groups.geo ?? {},
      user: groups.user ?? {},
      properties: (values.properties as Record<string, unknown> | undefined) ?? {},
      details: (values.details as ValidEvent['details'] | undefined) ?? [],
      unknown,
    },
  };
}

export function validateIdentify(
  v: unknown,
  clock: Clock,
  limits: Limits,
  sourceBytes?: number,
): Result<ValidIdentify> {
  const pre = precheck(v, limits, sourceBytes);
  if (pre) return { ok: false, problems: [pre] };
  const e = v as Record<string, unknown>;
  const problems: Problem[] = [];
  const warnings: string[] = [];
  const values: Values = {};
  for (const [k, raw] of Object.entries(e)) {
    if (k === 'traits') continue;
    const spec = own<FieldSpec | GroupSpec>(IDENTIFY_FIELDS, k);
    if (spec === undefined || spec.kind === 'group') {
      warnings.push(`${k}: unknown field (ignored)`);
      continue;
    }
    if (raw === null || raw === undefined) continue;
    accept(checkField(spec, raw, k), k, values, problems, warnings);
  }
  const traits: Values = {};
  const attributes: Record<string, unknown> = {};
  if (e.traits !== undefined && e.traits !== null) {
    if (!isPlainObject(e.traits)) {
      problems.push({
        reason: 'invalid_field',
        message: `traits: expected an object, got ${typeName(e.traits)}`,
      });
    } else {
      for (const [k, raw] of Object.entries(e.traits)) {
        const spec = own<FieldSpec>(IDENTIFY_TRAITS, k);
        if (spec === undefined) {
          attributes[k] = raw;
          continue;
        }
        if (raw === null || raw === undefined) continue;
        accept(checkField(spec, raw, `traits.${k}`), k, traits, problems, warnings);
      }
    }
  }
  if (values.user_id === undefined && !problems.some((p) => p.message.startsWith('user_id'))) {
    problems.push({ reason: 'missing_identity', message: 'user_id: required' });
  }
  const identifyClock = values.sent_at === undefined ? clock : { ...clock, sentAt: num(values.sent_at) };
  const time = correctTime(num(values.timestamp), identifyClock, limits, 'timestamp', warnings);
  if (!time.ok) problems.push(time.problem);
  if (problems.length > 0 || !time.ok) return { ok: false, problems };
  return {
    ok: true,
    warnings,
    value: {
      event_id: str(values.event_id),
      user_id: str(values.user_id) ?? '',
      anonymous_id: str(values.anonymous_id),
      identified_at: time.value,
      traits,
      attributes,
    },
  };
}
