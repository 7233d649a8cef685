/**
 * Requests for the pipeline fuzz (test/integration/pipeline-fuzz.test.ts), generated from the
 * collector's contract (services/collector/validation/spec.ts): valid events and Segment messages
 * mutated field by field toward every boundary the contract names (string caps, numeric ranges,
 * dates, required and optional fields) and beyond it (unicode edge cases, non-finite numbers,
 * years 1 and 9999, odd request-level sent times, big batch contexts).
 *
 * Each generated request also carries the contract's verdict for each of its items (accept /
 * reject / either) and how to find an accepted item downstream: its event id when it has one, else
 * a marker in its properties; for identify and alias the ids that must reach dim_users and
 * identity_map.
 *
 * Determinism: request i of seed s is a pure function of (s, i) apart from times, which are relative
 * to the moment it is generated. Requests are generated in chunks (generate()), so a 100k-request
 * run holds one chunk at a time, and a failure names (seed, index) and can print the request again
 * (requestAt()).
 */
import fc from 'fast-check';
import {
  EVENT_FIELDS,
  type FieldSpec,
  IDENTIFY_TRAITS,
  MAX_ID_LENGTH,
  MAX_NAME_LENGTH,
  MAX_TEXT_LENGTH,
} from '../../schemas/native-api.ts';
import { CONTRACT } from '../../schemas/records.ts';
import { eventIdFor } from '../../services/collector/segment/map.ts';
import { DAY_MS, HOUR_MS } from '../../services/lib/time.ts';

export type Verdict = 'accept' | 'reject' | 'either';

export interface FuzzItem {
  readonly kind: 'activity' | 'identify' | 'alias';
  /** Position in the request (the response's `index`). */
  readonly index: number;
  /** The id it is stored under (lower case, Segment ids mapped), when the sender gave one. */
  readonly eventId: string | undefined;
  /** properties.fuzz_marker, for activities sent without an id. */
  readonly marker: string | undefined;
  /** Identify/alias: the ids as ClickHouse stores them (UTF-8 round trip applied). */
  readonly userId: string | undefined;
  readonly anonymousId: string | undefined;
  readonly previousId: string | undefined;
  readonly verdict: Verdict;
  /** Fields a rejection of this item must name ("<field>: <why>"); native items only. */
  readonly invalidFields: readonly string[];
  /** What was done to the valid base item (for the failure report). */
  readonly mutations: readonly string[];
}

export interface FuzzRequest {
  readonly seed: number;
  readonly index: number;
  /** The write key's kind: a browser (track-only) key may not send identify or alias. */
  readonly key: 'server' | 'browser';
  readonly path: string;
  /** The exact body text (it may hold literals JSON.stringify cannot write, such as 1e400). */
  readonly body: string;
  readonly items: readonly FuzzItem[];
  /** Set when the whole request must be refused (4xx): the field its message names. */
  readonly requestError: string | undefined;
  readonly mutations: readonly string[];
}

/** Marker property for activities sent without an event id. */
export const MARKER_PROPERTY = 'fuzz_marker';

// ---------------------------------------------------------------------------------------------
// Values

/** A JSON literal written verbatim into the body (1e400, -0): JSON.stringify cannot express them. */
interface Raw {
  readonly rawJson: string;
}
const raw = (text: string): Raw => ({ rawJson: text });
const isRaw = (v: unknown): v is Raw => typeof v === 'object' && v !== null && 'rawJson' in v;

/** The field is left out of the body. */
const ABSENT = Symbol('absent');

/** Times are generated relative to the moment the request is materialized. */
type Value = unknown | typeof ABSENT | ((now: number) => unknown);

interface Mutation {
  readonly label: string;
  readonly value: Value;
  /** The contract's verdict on this value for this field. */
  readonly valid: boolean | 'either';
}

const m = (label: string, value: Value, valid: boolean | 'either'): Mutation => ({ label, value, valid });

/** Characters that break naive code: controls, NUL, direction marks, astral, lone surrogates. */
const ODD_CHARS = [
  '\u0000',
  '\u0001',
  '\u001f',
  '\u007f',
  '\u0085',
  '\u200b',
  '\u200e',
  '\u200f',
  '\u202e',
  '\u2028',
  '\ufeff',
  '\ufffd',
  '\u0301',
  '\ud83d\ude00',
  '\ud800',
  '\udfff',
  '\ud83d',
  '"',
  '\\',
  "'",
  '\n',
  '\t',
  ' ',
  '%s',
  '{{x}}',
  'é',
  'ß',
  '\u4e2d',
  '\u05d0',
] as const;

const oddString = (maxUnits: number): fc.Arbitrary<string> =>
  fc
    .array(fc.oneof(fc.constantFrom(...ODD_CHARS), fc.string({ unit: 'binary', maxLength: 4 })), {
      minLength: 1,
      maxLength: 12,
    })
    .map((parts) => parts.join('').slice(0, maxUnits));

/** Exactly `units` UTF-16 code units, ending in an astral character (2 units) when there is room. */
const maximal = (units: number, astral: boolean): string =>
  astral && units >= 2 ? `${'x'.repeat(units - 2)}\ud83d\ude00` : 'x'.repeat(units);

/**
 * The contract's rule for strings: a cap in UTF-16 units, (except text) not blank, and for an id
 * (an identity) well-formed Unicode: an unpaired surrogate has no UTF-8 form (names and text get
 * U+FFFD instead).
 */
function stringValid(s: string, cap: number, allowEmpty: boolean, identity = false): boolean {
  return s.length <= cap && (allowEmpty || s.trim() !== '') && (!identity || s.isWellFormed());
}

function stringMutations(
  cap: number,
  allowEmpty: boolean,
  required: boolean,
  identity = false,
): fc.Arbitrary<Mutation> {
  return fc.oneof(
    fc.constantFrom(
      m(`at the ${cap}-unit cap`, maximal(cap, false), true),
      m(`at the ${cap}-unit cap, astral last`, maximal(cap, true), true),
      m(`one past the ${cap}-unit cap`, maximal(cap + 1, false), false),
      m('empty', '', allowEmpty),
      m('blank', ' \t', allowEmpty),
      m('a number', 42, false),
      m('an object', { a: 1 }, false),
      m('null', null, !required),
      m('absent', ABSENT, !required),
    ),
    oddString(cap + 2).map((s) =>
      m(`odd ${JSON.stringify(s)}`, s, stringValid(s, cap, allowEmpty, identity)),
    ),
  );
}

/** Timestamps; `windowed` = the field must lie within the collector's age/future window. */
function timestampMutations(windowed: boolean, required: boolean): fc.Arbitrary<Mutation> {
  const iso = (ms: number): string => new Date(ms).toISOString();
  const fixed = (text: string): Mutation => m(text, text, !windowed);
  return fc.constantFrom(
    m('an hour ago', (now: number) => iso(now - HOUR_MS), true),
    m('an hour ago, 9 fraction digits', (now: number) => iso(now - HOUR_MS).replace('Z', '123456Z'), true),
    m(
      'an hour ago, +14:00',
      (now: number) => new Date(now - HOUR_MS + 14 * HOUR_MS).toISOString().replace('Z', '+14:00'),
      true,
    ),
    m('today, date only', (now: number) => iso(now).slice(0, 10), true),
    m('363 days ago', (now: number) => iso(now - 363 * DAY_MS), true),
    m('23 h ahead', (now: number) => iso(now + 23 * HOUR_MS), true),
    m('367 days ago', (now: number) => iso(now - 367 * DAY_MS), !windowed),
    m('25 h ahead', (now: number) => iso(now + 25 * HOUR_MS), !windowed),
    fixed('1970-01-01T00:00:00Z'),
    fixed('1969-12-31T23:59:59Z'),
    fixed('0001-01-01T00:00:00Z'),
    fixed('0000-01-01T00:00:00Z'),
    fixed('9999-12-31T23:59:59.999Z'),
    fixed('2106-02-07T06:28:15Z'),
    fixed('2106-02-07T06:28:16Z'),
    fixed('2038-01-19T03:14:08Z'),
    m('garbage', 'yesterday', false),
    m('no zone', '2024-01-01T00:00:00', false),
    m('Feb 30', '2024-02-30T00:00:00Z', false),
    m('hour 24', '2024-01-01T24:00:00Z', false),
    m('epoch ms number', 1_700_000_000_000, false),
    m('null', null, !required),
    m('absent', ABSENT, !required),
  );
}

const dateMutations = (): fc.Arbitrary<Mutation> =>
  fc.constantFrom(
    m('1970-01-01', '1970-01-01', true),
    m('1969-12-31', '1969-12-31', true),
    m('0001-01-01', '0001-01-01', true),
    m('9999-12-31', '9999-12-31', true),
    m('2000-02-29', '2000-02-29', true),
    m('2001-02-29', '2001-02-29', false),
    m('1990-1-1', '1990-1-1', false),
    m('a date-time', '1990-01-01T00:00:00Z', false),
    m('a number', 19_900_101, false),
    m('absent', ABSENT, true),
  );

function numberMutations(spec: FieldSpec): fc.Arbitrary<Mutation> {
  const min = spec.min ?? -Number.MAX_VALUE;
  const max = spec.max ?? Number.MAX_VALUE;
  const integer = spec.kind === 'integer';
  const inRange = (v: number): boolean => v >= min && v <= max && (!integer || Number.isInteger(v));
  const past = (v: number, dir: 1 | -1): number =>
    integer ? v + dir : v + dir * Math.max(1e-9, Math.abs(v) * 1e-12);
  return fc.oneof(
    fc.constantFrom(
      m(`min ${min}`, min, true),
      m(`max ${max}`, max, true),
      m(`below min ${past(min, -1)}`, past(min, -1), false),
      m(`above max ${past(max, 1)}`, past(max, 1), false),
      m('-0 literal', raw('-0'), inRange(0)),
      m('1e400 literal', raw('1e400'), false),
      m('-1e400 literal', raw('-1e400'), false),
      m('1.5', 1.5, inRange(1.5)),
      m('5e-324', 5e-324, inRange(5e-324)),
      m('2^53', 2 ** 53, inRange(2 ** 53)),
      m('a numeric string', '5', false),
      m('true', true, false),
      m('absent', ABSENT, true),
    ),
    (integer
      ? fc.integer({ min: Math.max(min, -(2 ** 31)), max: Math.min(max, 2 ** 31) })
      : fc.double({ min, max, noNaN: true })
    ).map((v) => m(`in range ${v}`, v, inRange(v))),
  );
}

const BOOLEAN_MUTATIONS = fc.constantFrom(
  m('true', true, true),
  m('false', false, true),
  m('"true"', 'true', false),
  m('1', 1, false),
  m('absent', ABSENT, true),
);

/** Free-form JSON objects: unicode keys and values, nesting within the depth cap. */
const jsonObject = fc.dictionary(oddString(20), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 });

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
/** The collector refuses prototype-polluting keys anywhere in an event. */
function hasForbiddenKey(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return false;
  if (Array.isArray(v)) return v.some(hasForbiddenKey);
  return Object.keys(v).some(
    (k) => FORBIDDEN_KEYS.has(k) || hasForbiddenKey((v as Record<string, unknown>)[k]),
  );
}
const FORBIDDEN = JSON.parse('{"__proto__": {"polluted": true}}') as Record<string, unknown>;

const objectMutations = (): fc.Arbitrary<Mutation> =>
  fc.oneof(
    fc.constantFrom(
      m('empty object', {}, true),
      m('an array', [1, 2], false),
      m('a string', 'x', false),
      m('a forbidden key', FORBIDDEN, false),
      m('absent', ABSENT, true),
    ),
    jsonObject.map((o) => m('odd object', o, !hasForbiddenKey(o))),
  );

/** A trait without a column of its own: any JSON value is kept in user_attributes. */
const unknownTraitMutations = (): fc.Arbitrary<Mutation> =>
  fc.oneof(
    fc.constantFrom(m('an array', [1, '\u0000'], true), m('a forbidden key', FORBIDDEN, false)),
    fc.jsonValue({ maxDepth: 3 }).map((v) => m('odd value', v, !hasForbiddenKey(v))),
  );

const detailsMutations = (): fc.Arbitrary<Mutation> =>
  fc.oneof(
    fc.constantFrom(
      m('empty', [], true),
      m('type at the cap', [{ type: maximal(MAX_NAME_LENGTH, true), payload: null }], true),
      m('empty type', [{ type: '' }], false),
      m('unknown key', [{ type: 't', extra: 1 }], false),
      m('not an array', 'x', false),
      m('an item not an object', [1], false),
      m('absent', ABSENT, true),
    ),
    fc
      .array(
        fc.record({
          type: fc.constantFrom('click', 'view', '\u202e'),
          payload: fc.jsonValue({ maxDepth: 2 }),
        }),
        {
          minLength: 1,
          maxLength: 3,
        },
      )
      .map((d) => m('details rows', d, !hasForbiddenKey(d))),
  );

const countryMutations = (): fc.Arbitrary<Mutation> =>
  fc.constantFrom(
    m('DE', 'DE', true),
    m('lower case', 'us', true),
    m('XX', 'XX', true),
    m('one letter', 'D', false),
    m('three letters', 'DEU', false),
    m('digit', 'D1', false),
    m('non-ASCII', 'Ü', false),
    m('absent', ABSENT, true),
  );

/** Boundary mutations of one field, derived from its kind, cap and range in spec.ts. */
function fieldMutations(
  spec: FieldSpec,
  o: { windowed?: boolean; required?: boolean } = {},
): fc.Arbitrary<Mutation> {
  const required = o.required ?? false;
  switch (spec.kind) {
    case 'id':
      return stringMutations(MAX_ID_LENGTH, false, required, true);
    case 'name':
      return stringMutations(MAX_NAME_LENGTH, false, required);
    case 'text':
      return stringMutations(MAX_TEXT_LENGTH, true, required);
    case 'country':
      return countryMutations();
    case 'timestamp':
      return timestampMutations(o.windowed ?? false, required);
    case 'date':
      return dateMutations();
    case 'session':
      return fc.oneof(
        numberMutations({ ...spec, kind: 'integer' }).map((mu) =>
          // A string is a session id now: the numeric string '5' is valid.
          mu.label === 'a numeric string' ? { ...mu, valid: true } : mu,
        ),
        // 42 is an integer in range, which a session id may be.
        stringMutations(MAX_ID_LENGTH, false, false, true).map((mu) =>
          mu.label === 'a number' ? { ...mu, valid: true } : mu,
        ),
      );
    case 'integer':
    case 'number':
      return numberMutations(spec);
    case 'boolean':
      return BOOLEAN_MUTATIONS;
    case 'object':
      return objectMutations();
    case 'details':
      return detailsMutations();
    case 'uuid':
      return fc.constantFrom(
        m('upper case', 'UPPER', true),
        m('not a UUID', 'not-a-uuid', false),
        m('empty', '', false),
        m('a number', 123, false),
        m('null', null, true),
        m('absent', ABSENT, true),
      );
  }
}

// ---------------------------------------------------------------------------------------------
// Plans: what the arbitraries generate (ids and times are filled in by materialize)

interface FieldChange {
  readonly path: readonly string[];
  readonly mutation: Mutation;
}

/** Up to `max` changes on distinct top-level fields, each from that field's mutation table. */
function changes(table: ReadonlyArray<readonly [readonly string[], fc.Arbitrary<Mutation>]>, max: number) {
  return fc
    .uniqueArray(fc.integer({ min: 0, max: table.length - 1 }), {
      maxLength: max,
      selector: (i) => table[i]?.[0][0],
    })
    .chain((picks) =>
      picks.length === 0
        ? fc.constant<FieldChange[]>([])
        : fc.tuple(
            ...picks.map((i) => {
              const [path, arb] = table[i] as readonly [readonly string[], fc.Arbitrary<Mutation>];
              return arb.map((mutation): FieldChange => ({ path, mutation }));
            }),
          ),
    );
}

/** Every field of EVENT_FIELDS (group members included), with its boundary mutations. */
const EVENT_TABLE: ReadonlyArray<readonly [readonly string[], fc.Arbitrary<Mutation>]> = [
  ...Object.entries(EVENT_FIELDS).flatMap(([name, spec]) =>
    spec.kind === 'group'
      ? [
          [
            [name],
            fc.constantFrom(m('not an object', 'x', false), m('unknown member', { nope: 1 }, true)),
          ] as const,
          ...Object.entries(spec.fields).map(
            ([member, s]) => [[name, member], fieldMutations(s as FieldSpec)] as const,
          ),
        ]
      : [
          [
            [name],
            fieldMutations(spec, {
              windowed: name === 'timestamp',
              required: name === 'activity',
            }),
          ] as const,
        ],
  ),
  [['unknown_top_level'], fc.constantFrom(m('unknown field', { x: '\u0000' }, true))],
];

const IDENTIFY_TABLE: ReadonlyArray<readonly [readonly string[], fc.Arbitrary<Mutation>]> = [
  [['event_id'], fieldMutations(EVENT_FIELDS.event_id)],
  [['anonymous_id'], fieldMutations(EVENT_FIELDS.anonymous_id)],
  [['timestamp'], timestampMutations(true, false)],
  ...Object.entries(IDENTIFY_TRAITS).map(
    ([name, spec]) => [['traits', name], fieldMutations(spec as FieldSpec)] as const,
  ),
  [['traits', 'odd_trait'], unknownTraitMutations()],
  [['traits'], fc.constantFrom(m('not an object', 7, false), m('empty', {}, true))],
];

/** How the request dates itself (native `sent_at`, Segment `sentAt`). */
const SENT_AT = fc.constantFrom<{ label: string; value: Value; valid: boolean }>(
  { label: 'no sent_at', value: ABSENT, valid: true },
  { label: 'sent_at now', value: (now: number) => new Date(now).toISOString(), valid: true },
  { label: 'sent_at 0001-01-01', value: '0001-01-01T00:00:00Z', valid: true },
  { label: 'sent_at 1969-12-31T23:59:59Z', value: '1969-12-31T23:59:59Z', valid: true },
  { label: 'sent_at 1970-01-01', value: '1970-01-01T00:00:00Z', valid: true },
  { label: 'sent_at 2106-02-07T06:28:16Z', value: '2106-02-07T06:28:16Z', valid: true },
  { label: 'sent_at 9999-12-31', value: '9999-12-31T23:59:59Z', valid: true },
  { label: 'sent_at garbage', value: 'last tuesday', valid: false },
);
/** Mostly plain, sometimes odd: accepted events must stay plentiful. */
const sentAt = fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 2, arbitrary: SENT_AT });

interface NativeEventPlan {
  readonly kind: 'native-event';
  readonly changes: readonly FieldChange[];
  readonly withAnonymous: boolean;
  readonly withUser: boolean;
}
interface NativeIdentifyPlan {
  readonly kind: 'native-identify';
  readonly changes: readonly FieldChange[];
  readonly userSuffix: string;
  readonly userProblem: Mutation | undefined;
  readonly withAnonymous: boolean;
}
type SegmentType = 'track' | 'page' | 'screen' | 'group' | 'identify' | 'alias';
interface SegmentPlan {
  readonly kind: 'segment';
  readonly type: SegmentType;
  readonly messageId: 'uuid' | 'free-form' | 'absent' | 'empty' | 'number';
  readonly userId: Mutation;
  readonly anonymousId: boolean;
  readonly event: Mutation;
  readonly properties:
    | 'absent'
    | 'empty'
    | 'feature'
    | 'feature-empty'
    | 'feature-long'
    | 'odd'
    | 'not-object';
  readonly traits: Mutation | undefined;
  readonly context: Record<string, unknown> | undefined;
  readonly timestamp: Mutation;
  readonly sentAt: { label: string; value: Value; valid: boolean } | undefined;
  readonly previousId: Mutation;
}

type RequestPlan =
  | {
      readonly api: 'native-events';
      readonly single: boolean;
      readonly sentAt: { label: string; value: Value; valid: boolean } | undefined;
      readonly items: readonly NativeEventPlan[];
    }
  | {
      readonly api: 'native-identify';
      readonly sentAt: { label: string; value: Value; valid: boolean } | undefined;
      readonly item: NativeIdentifyPlan;
    }
  | {
      readonly api: 'segment-batch';
      readonly sentAt: { label: string; value: Value; valid: boolean } | undefined;
      readonly context: Record<string, unknown> | undefined;
      readonly items: readonly SegmentPlan[];
    }
  | { readonly api: 'segment-single'; readonly item: SegmentPlan };

/** Mostly-valid: half of the items carry no change at all. */
const eventChanges = fc.oneof(
  { weight: 1, arbitrary: fc.constant<FieldChange[]>([]) },
  { weight: 1, arbitrary: changes(EVENT_TABLE, 3) },
);

const nativeEventPlan: fc.Arbitrary<NativeEventPlan> = fc.record({
  kind: fc.constant('native-event' as const),
  changes: eventChanges,
  withAnonymous: fc.boolean(),
  withUser: fc.oneof(
    { weight: 5, arbitrary: fc.constant(true) },
    { weight: 1, arbitrary: fc.constant(false) },
  ),
});

const nativeIdentifyPlan: fc.Arbitrary<NativeIdentifyPlan> = fc.record({
  kind: fc.constant('native-identify' as const),
  changes: fc.oneof(fc.constant<FieldChange[]>([]), changes(IDENTIFY_TABLE, 3)),
  userSuffix: fc.oneof({ weight: 3, arbitrary: fc.constant('') }, { weight: 1, arbitrary: oddString(8) }),
  userProblem: fc.option(
    fc.constantFrom(
      m('user_id absent', ABSENT, false),
      m('user_id empty', '', false),
      m('user_id a number', 42, false),
      m(`user_id past the ${MAX_ID_LENGTH}-unit cap`, maximal(MAX_ID_LENGTH + 1, false), false),
    ),
    { freq: 8, nil: undefined },
  ),
  withAnonymous: fc.boolean(),
});

/** A big batch-level userAgent is copied into every message (issue 10, item 4). */
const BIG_USER_AGENT = `Mozilla/5.0 (X11; Linux x86_64) ${'AppleWebKit/537.36 '.repeat(220)}`.slice(0, 4096);

/** Mostly what real SDKs send; sometimes every member at or past its boundary. */
const segmentContext: fc.Arbitrary<Record<string, unknown> | undefined> = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  {
    weight: 3,
    arbitrary: fc.constantFrom<Record<string, unknown>>(
      { userAgent: BIG_USER_AGENT },
      { userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)', ip: '203.0.113.7' },
      { userAgent: 'Googlebot/2.1', ip: '2001:db8::1', sessionId: 0 },
      { sessionId: Number.MAX_SAFE_INTEGER - 1, timezone: 'Europe/Berlin', app: { version: '1.0.0' } },
      { location: { country: 'United States', city: 'Zürich', latitude: -90, longitude: 180 } },
      { device: { id: 'dev-1', type: 'ios' }, os: { name: 'iOS', version: '17.0' }, library: { name: 'x' } },
      { ip: 'not-an-ip', userAgent: '\u0000' },
    ),
  },
  {
    weight: 1,
    arbitrary: fc.record(
      {
        userAgent: fc.constantFrom(BIG_USER_AGENT, '\u0000', ''),
        ip: fc.constantFrom('203.0.113.7', 'not-an-ip', ''),
        sessionId: fc.constantFrom(0, -1, Number.MAX_SAFE_INTEGER, 1.5, 2 ** 53),
        location: fc.record(
          {
            country: fc.constantFrom('DE', 'United States', 'x'),
            city: oddString(10),
            latitude: fc.constantFrom(90, -90, 91, -0),
            longitude: fc.constantFrom(180, -180, 181),
          },
          { requiredKeys: [] },
        ),
        device: fc.record(
          {
            id: fc.constantFrom('dev-1', maximal(MAX_ID_LENGTH + 1, false)),
            type: fc.constantFrom('ios', 'x'),
          },
          { requiredKeys: [] },
        ),
        os: fc.record(
          {
            name: fc.constantFrom('Android', maximal(MAX_NAME_LENGTH + 1, false)),
            version: fc.constantFrom('17.0', ''),
          },
          { requiredKeys: [] },
        ),
        timezone: fc.constantFrom('', maximal(MAX_NAME_LENGTH, false), maximal(MAX_NAME_LENGTH + 1, false)),
      },
      { requiredKeys: [] },
    ),
  },
);

const segmentPlan: fc.Arbitrary<SegmentPlan> = fc.record({
  kind: fc.constant('segment' as const),
  type: fc.constantFrom<SegmentType>('track', 'track', 'page', 'screen', 'group', 'identify', 'alias'),
  messageId: fc.constantFrom<SegmentPlan['messageId']>(
    'uuid',
    'uuid',
    'free-form',
    'absent',
    'empty',
    'number',
  ),
  userId: fc.oneof(
    { weight: 6, arbitrary: fc.constant(m('userId', 'USER', true)) },
    { weight: 1, arbitrary: stringMutations(MAX_ID_LENGTH, false, false, true) },
  ),
  anonymousId: fc.boolean(),
  event: fc.oneof(
    {
      weight: 6,
      arbitrary: fc.constantFrom(m('event', 'Clicked', true), m('event', 'Order Completed', true)),
    },
    { weight: 1, arbitrary: stringMutations(MAX_NAME_LENGTH, false, true) },
  ),
  properties: fc.constantFrom<SegmentPlan['properties']>(
    'absent',
    'empty',
    'feature',
    'feature',
    'feature',
    'feature-empty',
    'feature-long',
    'odd',
    'not-object',
  ),
  traits: fc.option(
    fc.oneof(
      fc.constantFrom(
        m('createdAt 0001-01-01', { createdAt: '0001-01-01T00:00:00Z' }, true),
        m('createdAt 9999-12-31', { createdAt: '9999-12-31T23:59:59Z' }, true),
        m('createdAt garbage', { createdAt: 'soon' }, false),
        m('birthday date-time', { birthday: '1990-05-17T00:00:00.000Z' }, true),
        m('birthday 0001', { birthday: '0001-01-01' }, true),
        m('email + name', { email: 'a@b.c', name: '\u202eevil' }, true),
        m('segment past the cap', { segment: maximal(MAX_NAME_LENGTH + 1, false) }, false),
        m('is_test_account string', { is_test_account: 'yes' }, false),
      ),
      jsonObject.map((o) => m('odd traits', o, !hasForbiddenKey(o))),
    ),
    { freq: 2, nil: undefined },
  ),
  context: segmentContext,
  timestamp: fc.oneof(
    { weight: 3, arbitrary: fc.constant(m('no timestamp', ABSENT, true)) },
    { weight: 1, arbitrary: timestampMutations(true, false) },
  ),
  sentAt: fc.option(SENT_AT, { freq: 4, nil: undefined }),
  previousId: fc.oneof(
    { weight: 4, arbitrary: fc.constant(m('previousId', 'PREVIOUS', true)) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        m('previousId absent', ABSENT, false),
        m('previousId empty', '', false),
        m('previousId number', 5, false),
      ),
    },
  ),
});

const requestPlan: fc.Arbitrary<RequestPlan> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      api: fc.constant('native-events' as const),
      single: fc.oneof(
        { weight: 4, arbitrary: fc.constant(false) },
        { weight: 1, arbitrary: fc.constant(true) },
      ),
      sentAt,
      items: fc.array(nativeEventPlan, { minLength: 1, maxLength: 8 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ api: fc.constant('native-identify' as const), sentAt, item: nativeIdentifyPlan }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      api: fc.constant('segment-batch' as const),
      sentAt,
      context: fc.option(
        fc.constantFrom<Record<string, unknown>>(
          { userAgent: BIG_USER_AGENT, library: { name: 'analytics.js' } },
          { ip: '198.51.100.9' },
          { sessionId: 12 },
        ),
        { freq: 3, nil: undefined },
      ),
      items: fc.array(segmentPlan, { minLength: 1, maxLength: 8 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ api: fc.constant('segment-single' as const), item: segmentPlan }) },
);

// ---------------------------------------------------------------------------------------------
// Materialize: plan + (seed, index, now) -> body text and expectations

interface Ctx {
  readonly seed: number;
  readonly request: number;
  readonly now: number;
}

const valueAt = (v: Value, now: number): unknown =>
  typeof v === 'function' ? (v as (n: number) => unknown)(now) : v;

/** The event id of item `i` of request `ctx.request`: unique per (seed, request, item). */
export const fuzzEventId = (seed: number, request: number, item: number): string =>
  eventIdFor(`pipeline-fuzz:${seed}:${request}:${item}`) as string;
export const fuzzMarker = (seed: number, request: number, item: number): string =>
  `fz-${seed}-${request}-${item}`;

/** ClickHouse stores what Avro wrote: UTF-8, so a lone surrogate comes back as U+FFFD. */
export const stored = (s: string): string => Buffer.from(s, 'utf8').toString('utf8');

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  const [head, ...rest] = path;
  if (head === undefined) return;
  if (rest.length === 0) {
    if (value === ABSENT) delete target[head];
    else target[head] = value;
    return;
  }
  const child = target[head];
  if (typeof child !== 'object' || child === null || Array.isArray(child)) {
    if (value === ABSENT) return;
    target[head] = {};
  }
  setPath(target[head] as Record<string, unknown>, rest, value);
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function verdictOf(validities: ReadonlyArray<boolean | 'either'>): Verdict {
  if (validities.includes(false)) return 'reject';
  if (validities.includes('either')) return 'either';
  return 'accept';
}

function nativeEvent(
  plan: NativeEventPlan,
  ctx: Ctx,
  i: number,
  requestSentAt: { valid: boolean } | undefined,
) {
  const id = fuzzEventId(ctx.seed, ctx.request, i);
  const e: Record<string, unknown> = {
    event_id: id,
    ...(plan.withUser ? { user_id: `fz-u${(ctx.request * 7 + i) % 97}` } : {}),
    ...(plan.withAnonymous || !plan.withUser ? { anonymous_id: `fz-anon-${(ctx.request + i) % 89}` } : {}),
    activity: 'page_view',
    feature: 'search',
    timestamp: new Date(ctx.now - 5 * 60_000).toISOString(),
    properties: { plan: 'pro' },
  };
  const invalidFields: string[] = [];
  const validities: Array<boolean | 'either'> = [];
  let eventId: string | undefined = id;
  for (const c of plan.changes) {
    let value = valueAt(c.mutation.value, ctx.now);
    if (c.path[0] === 'event_id') {
      if (value === 'UPPER') value = id.toUpperCase();
      eventId =
        value === ABSENT || value === null
          ? undefined
          : typeof value === 'string'
            ? value.toLowerCase()
            : undefined;
    }
    setPath(e, c.path, value);
    validities.push(c.mutation.valid);
    if (c.mutation.valid === false) invalidFields.push(c.path.join('.'));
  }
  // Identity: user_id or anonymous_id, each valid when present.
  const identityOk = ['user_id', 'anonymous_id'].some((k) => {
    const v = e[k];
    const change = plan.changes.find((c) => c.path[0] === k);
    return v !== undefined && v !== null && (change === undefined || change.mutation.valid === true);
  });
  const identityNamed = plan.changes.some(
    (c) => (c.path[0] === 'user_id' || c.path[0] === 'anonymous_id') && !c.mutation.valid,
  );
  if (!identityOk) {
    validities.push(false);
    if (!identityNamed) invalidFields.push('user_id');
  }
  const marker = eventId === undefined ? fuzzMarker(ctx.seed, ctx.request, i) : undefined;
  if (marker !== undefined) {
    if (e.properties === undefined) e.properties = {};
    if (isObject(e.properties)) e.properties = { [MARKER_PROPERTY]: marker, ...e.properties };
  }
  if (requestSentAt && !requestSentAt.valid) validities.push(false);
  return {
    body: e,
    item: {
      kind: 'activity' as const,
      index: i,
      eventId: eventId !== undefined && /^[0-9a-f-]{36}$/.test(eventId) ? eventId : undefined,
      marker,
      userId: undefined,
      anonymousId: undefined,
      previousId: undefined,
      verdict: verdictOf(validities),
      invalidFields,
      mutations: plan.changes.map((c) => `${c.path.join('.')}: ${c.mutation.label}`),
    },
  };
}

function nativeIdentify(plan: NativeIdentifyPlan, ctx: Ctx, sent: RequestPlan & { api: 'native-identify' }) {
  const id = fuzzEventId(ctx.seed, ctx.request, 0);
  const userId = `fz-idf-${ctx.seed}-${ctx.request}${plan.userSuffix}`;
  const anonymousId = `fz-idf-anon-${ctx.seed}-${ctx.request}`;
  const body: Record<string, unknown> = {
    event_id: id,
    user_id: userId,
    ...(plan.withAnonymous ? { anonymous_id: anonymousId } : {}),
    traits: { segment: 'pro', plan: 'team' },
  };
  const validities: Array<boolean | 'either'> = [];
  const invalidFields: string[] = [];
  const mutations: string[] = [];
  let eventId: string | undefined = id;
  for (const c of plan.changes) {
    let value = valueAt(c.mutation.value, ctx.now);
    if (c.path[0] === 'event_id') {
      if (value === 'UPPER') value = id.toUpperCase();
      eventId = typeof value === 'string' ? value.toLowerCase() : undefined;
    }
    setPath(body, c.path, value);
    validities.push(c.mutation.valid);
    if (c.mutation.valid === false) invalidFields.push(c.path.join('.'));
    mutations.push(`${c.path.join('.')}: ${c.mutation.label}`);
  }
  if (plan.userProblem) {
    setPath(body, ['user_id'], plan.userProblem.value);
    validities.push(false);
    invalidFields.push('user_id');
    mutations.push(plan.userProblem.label);
  } else if (!userId.isWellFormed()) {
    // An odd suffix with an unpaired surrogate makes the id itself invalid (stringValid).
    validities.push(false);
    invalidFields.push('user_id');
    mutations.push(`user_id: odd ${JSON.stringify(userId)}`);
  }
  if (sent.sentAt) body.sent_at = valueAt(sent.sentAt.value, ctx.now);
  const anon = body.anonymous_id;
  return {
    body,
    item: {
      kind: 'identify' as const,
      index: 0,
      eventId: eventId !== undefined && /^[0-9a-f-]{36}$/.test(eventId) ? eventId : undefined,
      marker: undefined,
      userId: stored(userId),
      anonymousId: typeof anon === 'string' ? stored(anon) : undefined,
      previousId: undefined,
      verdict: verdictOf(validities),
      invalidFields,
      mutations,
    },
  };
}

function segmentMessage(plan: SegmentPlan, ctx: Ctx, i: number) {
  const free = `fz-msg-${ctx.seed}-${ctx.request}-${i}`;
  const uuid = fuzzEventId(ctx.seed, ctx.request, i);
  const idOf = { uuid, 'free-form': free, absent: ABSENT, empty: '', number: 42 } as const;
  const messageId = idOf[plan.messageId];
  const identity = plan.type === 'identify' || plan.type === 'alias';
  const userBase = identity ? `fz-sidf-${ctx.seed}-${ctx.request}-${i}` : `fz-su${(ctx.request + i) % 61}`;
  const userId = plan.userId.value === 'USER' ? userBase : valueAt(plan.userId.value, ctx.now);
  const msg: Record<string, unknown> = { type: plan.type, messageId, userId };
  const validities: Array<boolean | 'either'> = [plan.messageId !== 'empty' && plan.messageId !== 'number'];
  const mutations: string[] = [`type ${plan.type}`, `messageId ${plan.messageId}`];
  if (plan.userId.value !== 'USER') mutations.push(`userId: ${plan.userId.label}`);
  const anonymousId = `fz-sanon-${ctx.seed}-${ctx.request}-${i}`;
  if (plan.anonymousId) msg.anonymousId = anonymousId;
  validities.push(segmentIdentityValid(plan, identity));
  const marker = plan.messageId === 'absent' && !identity ? fuzzMarker(ctx.seed, ctx.request, i) : undefined;
  if (plan.type === 'track') {
    msg.event = valueAt(plan.event.value, ctx.now);
    validities.push(plan.event.valid);
    if (plan.event.label !== 'event') mutations.push(`event: ${plan.event.label}`);
  }
  if (!identity) {
    const props: Record<string, unknown> | string | undefined = {
      absent: undefined,
      empty: {},
      feature: { feature: 'search' },
      'feature-empty': { feature: '' },
      'feature-long': { feature: maximal(MAX_NAME_LENGTH + 1, false) },
      odd: { '\u202e': '\ud800', nested: { a: [1, '\u0000'] } },
      'not-object': 'x',
    }[plan.properties];
    mutations.push(`properties ${plan.properties}`);
    if (plan.properties === 'feature-long') validities.push(false);
    if (marker !== undefined)
      msg.properties = { [MARKER_PROPERTY]: marker, ...(isObject(props) ? props : {}) };
    else if (props !== undefined) msg.properties = props;
  }
  if (plan.traits && (plan.type === 'identify' || plan.type === 'group')) {
    msg.traits = plan.traits.value;
    mutations.push(`traits: ${plan.traits.label}`);
    if (plan.type === 'identify') validities.push(plan.traits.valid);
  }
  if (plan.context) {
    msg.context = plan.context;
    mutations.push(`context ${JSON.stringify(plan.context).slice(0, 200)}`);
    validities.push(contextValidity(plan.context, plan.type));
  }
  if (plan.timestamp.value !== ABSENT) {
    msg.timestamp = valueAt(plan.timestamp.value, ctx.now);
    validities.push(plan.timestamp.valid);
    mutations.push(`timestamp: ${plan.timestamp.label}`);
  }
  if (plan.sentAt) {
    msg.sentAt = valueAt(plan.sentAt.value, ctx.now);
    validities.push(plan.sentAt.valid);
    mutations.push(`message ${plan.sentAt.label}`);
  }
  let previousId: string | undefined;
  if (plan.type === 'alias') {
    const p =
      plan.previousId.value === 'PREVIOUS'
        ? `fz-sprev-${ctx.seed}-${ctx.request}-${i}`
        : valueAt(plan.previousId.value, ctx.now);
    if (p !== ABSENT) msg.previousId = p;
    if (typeof p === 'string') previousId = stored(p);
    validities.push(plan.previousId.valid);
    if (plan.previousId.value !== 'PREVIOUS') mutations.push(plan.previousId.label);
  }
  const eventId =
    plan.messageId === 'uuid' ? uuid : plan.messageId === 'free-form' ? eventIdFor(free) : undefined;
  return {
    body: msg,
    item: {
      kind:
        plan.type === 'identify'
          ? ('identify' as const)
          : plan.type === 'alias'
            ? ('alias' as const)
            : ('activity' as const),
      index: i,
      eventId,
      marker,
      userId: typeof userId === 'string' ? stored(userId) : undefined,
      anonymousId: plan.type === 'identify' && plan.anonymousId ? anonymousId : undefined,
      previousId,
      verdict: verdictOf(validities),
      invalidFields: [],
      mutations,
    },
  };
}

/**
 * A present user id must be valid; an absent one is fine for an activity with an anonymous id,
 * never for identify or alias.
 */
function segmentIdentityValid(plan: SegmentPlan, identity: boolean): boolean {
  const absent = plan.userId.value === ABSENT || plan.userId.value === null;
  if (absent) return !identity && plan.anonymousId;
  return plan.userId.value === 'USER' || plan.userId.valid === true;
}

/** Whether the collector may accept a message with this context (it validates what it maps). */
function contextValidity(c: Record<string, unknown>, type: SegmentType): boolean | 'either' {
  if (type === 'identify' || type === 'alias') return true;
  const tooLong = (v: unknown, cap: number): boolean => typeof v === 'string' && v.length > cap;
  const loc = isObject(c.location) ? c.location : {};
  const device = isObject(c.device) ? c.device : {};
  const os = isObject(c.os) ? c.os : {};
  const s = c.sessionId;
  const max = CONTRACT.maxLong;
  if (typeof s === 'number' && !(Number.isInteger(s) && s >= 0 && s <= max)) return false;
  if (typeof loc.latitude === 'number' && Math.abs(loc.latitude) > 90) return false;
  if (typeof loc.longitude === 'number' && Math.abs(loc.longitude) > 180) return false;
  if (tooLong(device.id, MAX_ID_LENGTH) || tooLong(c.timezone, MAX_NAME_LENGTH)) return false;
  if (typeof loc.city === 'string' && loc.city !== '' && !stringValid(loc.city, MAX_NAME_LENGTH, false))
    return false;
  // os_version is "<name> <version>": a name at the cap plus a version is past it.
  if (typeof os.name === 'string' && os.name.length > MAX_NAME_LENGTH - 5) return false;
  return true;
}

/** Serializes with Raw values written verbatim. */
function bodyText(value: unknown): string {
  const raws: string[] = [];
  const text = JSON.stringify(value, (_k, v: unknown) => {
    if (isRaw(v)) {
      raws.push(v.rawJson);
      return `@@fz-raw-${raws.length - 1}@@`;
    }
    return v;
  });
  return text.replace(/"@@fz-raw-(\d+)@@"/g, (_s, i: string) => raws[Number(i)] ?? 'null');
}

/** Every fifth request or so goes with a browser key, chosen from (seed, request) alone. */
const keyOf = (seed: number, request: number): 'server' | 'browser' =>
  (Math.imul(seed ^ Math.imul(request, 0x9e3779b1), 0x85ebca6b) >>> 0) % 5 === 0 ? 'browser' : 'server';

/** The request as sent with its key: a browser key's identify and alias items are refused. */
function materialize(plan: RequestPlan, ctx: Ctx): FuzzRequest {
  const key = keyOf(ctx.seed, ctx.request);
  const r = materializeBody(plan, ctx);
  if (key === 'server') return r;
  return {
    ...r,
    key,
    items: r.items.map((item) => {
      if (item.kind === 'activity') return item;
      // Refused either way; named by its kind unless something else may be named instead (an
      // item invalid anyway, whose own fields are checked only when it had any to name).
      const invalidFields =
        item.verdict === 'accept'
          ? [item.kind]
          : item.invalidFields.length > 0
            ? [...item.invalidFields, item.kind]
            : [];
      return { ...item, verdict: 'reject' as const, invalidFields };
    }),
    mutations: [...r.mutations, 'browser (track-only) key'],
  };
}

function materializeBody(plan: RequestPlan, ctx: Ctx): FuzzRequest {
  const base = { seed: ctx.seed, index: ctx.request, key: 'server' as const };
  switch (plan.api) {
    case 'native-events': {
      const built = plan.items.map((p, i) => nativeEvent(p, ctx, i, plan.sentAt));
      const single = plan.single && built.length === 1 && plan.sentAt === undefined;
      const envelope: Record<string, unknown> = { events: built.map((b) => b.body) };
      if (plan.sentAt) envelope.sent_at = valueAt(plan.sentAt.value, ctx.now);
      return {
        ...base,
        path: '/v1/events',
        body: bodyText(single ? built[0]?.body : envelope),
        items: built.map((b) => b.item),
        requestError: plan.sentAt && !plan.sentAt.valid ? 'sent_at' : undefined,
        mutations: plan.sentAt ? [plan.sentAt.label] : [],
      };
    }
    case 'native-identify': {
      const built = nativeIdentify(plan.item, ctx, plan);
      return {
        ...base,
        path: '/v1/identify',
        body: bodyText(built.body),
        items: [built.item],
        requestError: plan.sentAt && !plan.sentAt.valid ? 'sent_at' : undefined,
        mutations: plan.sentAt ? [plan.sentAt.label] : [],
      };
    }
    case 'segment-batch': {
      const built = plan.items.map((p, i) => segmentMessage(p, ctx, i));
      const envelope: Record<string, unknown> = { batch: built.map((b) => b.body) };
      if (plan.sentAt) envelope.sentAt = valueAt(plan.sentAt.value, ctx.now);
      if (plan.context) envelope.context = plan.context;
      return {
        ...base,
        path: '/v1/batch',
        body: bodyText(envelope),
        items: built.map((b) => b.item),
        requestError: plan.sentAt && !plan.sentAt.valid ? 'sentAt' : undefined,
        mutations: [
          ...(plan.sentAt ? [plan.sentAt.label] : []),
          ...(plan.context ? [`batch context ${Object.keys(plan.context).join(',')}`] : []),
        ],
      };
    }
    case 'segment-single': {
      const built = segmentMessage(plan.item, ctx, 0);
      // /v1/identify with a Segment body takes the native route's dispatch on userId/anonymousId.
      return {
        ...base,
        path: `/v1/${plan.item.type}`,
        body: bodyText(built.body),
        items: [built.item],
        requestError: undefined,
        mutations: [],
      };
    }
  }
}

/** Seed of chunk `chunk` of a run seeded `seed`: chunks are independent, so any can be regenerated. */
const chunkSeed = (seed: number, chunk: number): number =>
  (Math.imul(seed ^ 0x9e3779b9, 31) + chunk * 7919) | 0;

export const CHUNK = 50;

/** Requests [from, from + count) of the run seeded `seed`, all chunks generated lazily. */
export function* generate(
  seed: number,
  count: number,
  from = 0,
  now: () => number = Date.now,
): Generator<FuzzRequest> {
  for (let chunk = Math.floor(from / CHUNK); chunk * CHUNK < from + count; chunk++) {
    const plans = fc.sample(requestPlan, { seed: chunkSeed(seed, chunk), numRuns: CHUNK });
    for (const [k, plan] of plans.entries()) {
      const request = chunk * CHUNK + k;
      if (request < from || request >= from + count) continue;
      yield materialize(plan, { seed, request, now: now() });
    }
  }
}

/** Request `index` of the run seeded `seed`, as generated now (for failure reports). */
export function requestAt(seed: number, index: number): FuzzRequest | undefined {
  return generate(seed, 1, index).next().value ?? undefined;
}
