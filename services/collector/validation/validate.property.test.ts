/**
 * Property tests: for any JSON value the validator returns (never throws), and whatever it accepts
 * satisfies the contract's invariants and encodes with the Avro schema.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CONTRACT } from '../../../schemas/records.ts';
import { AvroCodec } from '../../lib/avro.ts';
import { Enricher } from '../enrichment/records.ts';
import { type Limits, validateEvent, validateIdentify } from './validate.ts';

const codec = new AvroCodec();
const enricher = new Enricher({ anonymizeIp: true, geo: undefined, geoAddress: 'full', fineGeo: true });
const LIMITS: Limits = {
  maxEventBytes: 32_768,
  maxDepth: 6,
  maxKeys: 200,
  maxAgeMs: 365 * 86_400_000,
  maxFutureMs: 86_400_000,
  maxSkewCorrectionMs: 86_400_000,
};
const NOW = Date.UTC(2026, 5, 1, 12);
const ctx = {
  source: 's',
  receivedAt: NOW,
  sentAt: undefined,
  ip: '2001:db8::1',
  userAgent: undefined,
  scope: 'all' as const,
};

const isId = (v: unknown) => typeof v === 'string' && v.trim() !== '';

// Values shaped like events, so the generator reaches deep into the validator, mixed with noise.
const iso = fc
  .date({ min: new Date(NOW - 400 * 86_400_000), max: new Date(NOW + 2 * 86_400_000), noInvalidDate: true })
  .map((d) => d.toISOString());
// Within an hour of the age and future bounds, where an off-by-some bound check shows.
const edgeIso = fc
  .tuple(
    fc.constantFrom(NOW + LIMITS.maxFutureMs, NOW - LIMITS.maxAgeMs),
    fc.integer({ min: -3_600_000, max: 3_600_000 }),
  )
  .map(([edge, d]) => new Date(edge + d).toISOString());
const scalar = fc.oneof(
  fc.string(),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  iso,
  fc.uuid(),
);
const eventLike = fc.record(
  {
    event_id: fc.oneof(fc.uuid(), scalar),
    user_id: scalar,
    anonymous_id: scalar,
    activity: scalar,
    feature: scalar,
    timestamp: fc.oneof(iso, edgeIso, scalar),
    session_id: scalar,
    duration_seconds: scalar,
    device: fc.oneof(
      fc.dictionary(fc.constantFrom('id', 'type', 'platform', 'os_version', 'x'), scalar),
      scalar,
    ),
    geo: fc.oneof(
      fc.record({ country_code: scalar, latitude: scalar, longitude: scalar }, { requiredKeys: [] }),
      scalar,
    ),
    user: fc.oneof(
      fc.record(
        {
          birth_date: scalar,
          registration_date: fc.oneof(iso, scalar),
          is_test_account: scalar,
          attributes: fc.jsonValue(),
        },
        { requiredKeys: [] },
      ),
      scalar,
    ),
    properties: fc.oneof(fc.jsonValue(), fc.object()),
    details: fc.oneof(
      fc.array(fc.record({ type: scalar, payload: fc.jsonValue() }, { requiredKeys: [] })),
      scalar,
    ),
    extra: fc.jsonValue(),
  },
  { requiredKeys: [] },
);

// Only values the contract allows, so the validator must accept every event built from them; a
// validator that rejected too much would fail here (the tests above only see what it accepts).
const name = fc.string({ minLength: 1, maxLength: 200 }).filter((x) => x.trim() !== '');
const validEvent = fc.record(
  {
    event_id: fc.uuid(),
    user_id: name,
    activity: name,
    feature: name,
    timestamp: iso.filter(
      (t) => Date.parse(t) <= NOW + LIMITS.maxFutureMs && Date.parse(t) >= NOW - LIMITS.maxAgeMs,
    ),
    session_id: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER - 1 }),
    duration_seconds: fc.integer({ min: 0, max: CONTRACT.maxInt }),
    geo: fc.record(
      { latitude: fc.double({ min: -90, max: 90, noNaN: true }), country_code: fc.constantFrom('US', 'de') },
      { requiredKeys: [] },
    ),
    user: fc.record(
      {
        birth_date: fc
          .date({
            min: new Date(Date.UTC(1900, 0, 1)),
            max: new Date(Date.UTC(2105, 11, 31)),
            noInvalidDate: true,
          })
          .map((d) => d.toISOString().slice(0, 10)),
        is_test_account: fc.boolean(),
      },
      { requiredKeys: [] },
    ),
    // Within the structural caps (LIMITS: depth 6 with the event itself, 200 keys), without the
    // prototype-polluting keys the validator refuses.
    properties: fc.object({
      maxDepth: 3,
      maxKeys: 5,
      key: fc.string().filter((k) => !['__proto__', 'constructor', 'prototype'].includes(k)),
    }),
  },
  { requiredKeys: ['user_id', 'activity'] },
);

// A valid event with one field replaced by noise: near the boundary, where a validator goes wrong.
const FIELDS = [
  'event_id',
  'user_id',
  'anonymous_id',
  'activity',
  'feature',
  'timestamp',
  'session_id',
  'duration_seconds',
  'device',
  'geo',
  'user',
  'properties',
  'details',
  'extra',
] as const;
const nearValid = fc
  .tuple(validEvent, eventLike, fc.constantFrom(...FIELDS))
  .map(([valid, noise, key]) => ({ ...valid, [key]: (noise as Record<string, unknown>)[key] }));

describe('validateEvent (properties)', () => {
  it('never throws, and what it accepts is a valid Avro record with an identity and an activity', () => {
    // Counted, so the property is seen to reach the accepted branch rather than hold vacuously.
    let accepted = 0;
    fc.assert(
      fc.property(
        fc.oneof(eventLike, validEvent, nearValid, fc.jsonValue(), fc.anything()),
        fc.option(iso, { nil: undefined }),
        (input, sentAt) => {
          const r = validateEvent(
            input,
            { receivedAt: NOW, sentAt: sentAt === undefined ? undefined : Date.parse(sentAt) },
            LIMITS,
          );
          if (!r.ok) {
            expect(r.problems.length).toBeGreaterThan(0);
            return;
          }
          accepted++;
          const e = input as Record<string, unknown>;
          expect(isId(e.user_id) || isId(e.anonymous_id)).toBe(true);
          expect(isId(e.activity)).toBe(true);
          expect(r.value.activity_timestamp).toBeLessThanOrEqual(NOW + LIMITS.maxFutureMs);
          expect(r.value.activity_timestamp).toBeGreaterThanOrEqual(NOW - LIMITS.maxAgeMs);
          const record = enricher.activity(r.value, ctx);
          expect(codec.type(codec.writerId('user_activity')).isValid(record)).toBe(true);
        },
      ),
      { numRuns: 2_000 },
    );
    expect(accepted).toBeGreaterThan(100);
  });

  it('never accepts an event whose identity or activity is broken', () => {
    const broken = fc.oneof(
      fc.constant(undefined),
      fc.constant(''),
      fc.constant('   '),
      fc.integer(),
      fc.boolean(),
      fc.object(),
    );
    fc.assert(
      fc.property(eventLike, broken, broken, (e, id, activity) => {
        const input = { ...e, user_id: id, anonymous_id: id, activity };
        expect(validateEvent(input, { receivedAt: NOW }, LIMITS).ok).toBe(false);
      }),
      { numRuns: 1_000 },
    );
  });
});

describe('validateEvent (valid input)', () => {
  it('accepts every event built from allowed values, without warnings, and it encodes', () => {
    fc.assert(
      fc.property(validEvent, (input) => {
        const r = validateEvent(input, { receivedAt: NOW }, LIMITS);
        expect(r.ok ? r.warnings : r.problems).toEqual([]);
        if (!r.ok) return;
        expect(codec.type(codec.writerId('user_activity')).isValid(enricher.activity(r.value, ctx))).toBe(
          true,
        );
      }),
      { numRuns: 1_000 },
    );
  });
});

describe('validateIdentify (properties)', () => {
  it('never throws, and what it accepts encodes', () => {
    let accepted = 0;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.record(
            {
              user_id: fc.oneof(fc.uuid(), scalar),
              traits: fc.oneof(fc.object(), scalar),
              timestamp: fc.oneof(iso, scalar),
            },
            { requiredKeys: [] },
          ),
          fc.anything(),
        ),
        (input) => {
          const r = validateIdentify(input, { receivedAt: NOW }, LIMITS);
          if (!r.ok) {
            expect(r.problems.length).toBeGreaterThan(0);
            return;
          }
          accepted++;
          expect(isId((input as Record<string, unknown>).user_id)).toBe(true);
          const record = enricher.identify(r.value, ctx);
          expect(codec.type(codec.writerId('user_identify')).isValid(record)).toBe(true);
        },
      ),
      { numRuns: 1_000 },
    );
    // About 100 of 1,000 are accepted (six runs: 82 to 126); 50 is five deviations below, so this
    // fails when the validator rejects what it should take, not by chance (at 60 it did, once in CI).
    expect(accepted).toBeGreaterThan(50);
  });

  // As for events: a validator that rejected every identify would pass the property above.
  it('accepts every identify built from allowed values, without warnings, keeping its traits', () => {
    const validIdentify = fc.record(
      {
        event_id: fc.uuid(),
        user_id: name,
        anonymous_id: name,
        timestamp: validEvent.map((e) => e.timestamp).filter((t) => t !== undefined),
        traits: fc.record(
          {
            gender: name,
            segment: name,
            is_test_account: fc.boolean(),
            country_code: fc.constantFrom('US', 'de', 'JP'),
            plan: fc.string(),
          },
          { requiredKeys: [] },
        ),
      },
      { requiredKeys: ['user_id'] },
    );
    fc.assert(
      fc.property(validIdentify, (input) => {
        const r = validateIdentify(input, { receivedAt: NOW }, LIMITS);
        expect(r.ok ? r.warnings : r.problems).toEqual([]);
        if (!r.ok) return;
        expect(r.value.user_id).toBe(input.user_id);
        expect(r.value.attributes).toEqual(
          input.traits?.plan === undefined ? {} : { plan: input.traits.plan },
        );
        expect(codec.type(codec.writerId('user_identify')).isValid(enricher.identify(r.value, ctx))).toBe(
          true,
        );
      }),
      { numRuns: 500 },
    );
  });
});
