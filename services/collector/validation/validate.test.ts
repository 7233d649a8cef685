import { describe, expect, it } from 'vitest';
import { CONTRACT } from '../../../schemas/records.ts';
import {
  checkStructure,
  correctTime,
  type Limits,
  MAX_RESERIALIZED_GROWTH,
  parseTimestamp,
  sessionNumber,
  validateEvent,
  validateIdentify,
} from './validate.ts';

const LIMITS: Limits = {
  maxEventBytes: 1_000,
  maxDepth: 4,
  maxKeys: 20,
  maxAgeMs: 10 * 86_400_000,
  maxFutureMs: 86_400_000,
  maxSkewCorrectionMs: 3_600_000,
};
const NOW = Date.UTC(2026, 5, 1, 12);

describe('parseTimestamp', () => {
  it.each([
    ['2026-06-01T12:00:00Z', Date.UTC(2026, 5, 1, 12)],
    ['2026-06-01T12:00:00.123456Z', Date.UTC(2026, 5, 1, 12, 0, 0, 123)],
    ['2026-06-01T14:00:00+02:00', Date.UTC(2026, 5, 1, 12)],
    ['2026-06-01T14:00:00+0200', Date.UTC(2026, 5, 1, 12)],
    ['2026-06-01 12:00Z', Date.UTC(2026, 5, 1, 12)],
    ['2026-06-01', Date.UTC(2026, 5, 1)],
  ])('%s', (raw, ms) => expect(parseTimestamp(raw)).toBe(ms));

  it.each(['2026-06-01T12:00:00', '2026-02-30', '2026-06-01T25:00:00Z', 'June 1 2026', '1717243200000', ''])(
    'rejects %j',
    (raw) => expect(parseTimestamp(raw)).toBeUndefined(),
  );
});

describe('correctTime', () => {
  it('shifts by received_at - sent_at', () => {
    const w: string[] = [];
    expect(
      correctTime(NOW - 5_000, { receivedAt: NOW, sentAt: NOW - 60_000 }, LIMITS, 'timestamp', w),
    ).toEqual({
      ok: true,
      value: NOW + 55_000,
    });
    expect(w).toEqual([]);
  });

  it('does not trust a clock off by more than the bound, and says so', () => {
    const w: string[] = [];
    const r = correctTime(NOW - 5_000, { receivedAt: NOW, sentAt: NOW - 7_200_000 }, LIMITS, 'timestamp', w);
    expect(r).toEqual({ ok: true, value: NOW - 5_000 });
    expect(w).toEqual(['sent_at: client clock off by 7200 s; timestamp not corrected']);
  });

  it('rejects the future and the too old after correction', () => {
    const future = correctTime(NOW + 2 * 86_400_000, { receivedAt: NOW }, LIMITS, 'timestamp', []);
    expect(future.ok || future.problem.reason).toBe('timestamp_in_future');
    const old = correctTime(NOW - 11 * 86_400_000, { receivedAt: NOW }, LIMITS, 'timestamp', []);
    expect(old.ok || old.problem.reason).toBe('timestamp_too_old');
    // A client clock 2 days fast that says so in sent_at is corrected back into the window.
    const fast = correctTime(
      NOW + 2 * 86_400_000,
      { receivedAt: NOW, sentAt: NOW + 2 * 86_400_000 },
      { ...LIMITS, maxSkewCorrectionMs: 3 * 86_400_000 },
      'timestamp',
      [],
    );
    expect(fast).toEqual({ ok: true, value: NOW });
  });

  // StrykerJS: each bound's `>` as `>=` (and the skew bound's `<=` as `<`) survived.
  it('accepts each bound itself and refuses one millisecond past it', () => {
    const at = (t: number, sentAt?: number) =>
      correctTime(
        t,
        { receivedAt: NOW, ...(sentAt === undefined ? {} : { sentAt }) },
        LIMITS,
        'timestamp',
        [],
      );
    expect(at(NOW + LIMITS.maxFutureMs)).toEqual({ ok: true, value: NOW + LIMITS.maxFutureMs });
    expect(at(NOW + LIMITS.maxFutureMs + 1).ok).toBe(false);
    expect(at(NOW - LIMITS.maxAgeMs)).toEqual({ ok: true, value: NOW - LIMITS.maxAgeMs });
    expect(at(NOW - LIMITS.maxAgeMs - 1).ok).toBe(false);
    // A clock off by exactly the correction bound is still corrected; one past it is not.
    const skew = LIMITS.maxSkewCorrectionMs;
    expect(at(NOW, NOW - skew)).toEqual({ ok: true, value: NOW + skew });
    expect(at(NOW, NOW - skew - 1)).toEqual({ ok: true, value: NOW });
  });

  it('holds the contract time bounds, inclusive, whatever the configured window', () => {
    const open = { ...LIMITS, maxAgeMs: 1e15, maxFutureMs: 1e15 };
    const at = (t: number) => correctTime(t, { receivedAt: NOW }, open, 'timestamp', []);
    expect(at(CONTRACT.maxTimeMs).ok).toBe(true);
    expect(at(CONTRACT.maxTimeMs + 1).ok).toBe(false);
    expect(at(CONTRACT.minActivityTimeMs).ok).toBe(true);
    expect(at(CONTRACT.minActivityTimeMs - 1).ok).toBe(false);
  });
});

describe('checkStructure', () => {
  it('finds forbidden keys at any depth', () => {
    expect(checkStructure(JSON.parse('{"a":[{"constructor":{"prototype":1}}]}'), LIMITS)?.message).toBe(
      'a[0].constructor: forbidden key',
    );
  });
  it('caps the serialized size of an event at maxEventBytes, inclusive', () => {
    const empty = Buffer.byteLength(JSON.stringify({ user_id: 'u', activity: 'a', p: '' }));
    const sized = (bytes: number) => ({ user_id: 'u', activity: 'a', p: 'x'.repeat(bytes - empty) });
    expect(Buffer.byteLength(JSON.stringify(sized(LIMITS.maxEventBytes)))).toBe(LIMITS.maxEventBytes);
    expect(validateEvent(sized(LIMITS.maxEventBytes), { receivedAt: NOW }, LIMITS).ok).toBe(true);
    const over = validateEvent(sized(LIMITS.maxEventBytes + 1), { receivedAt: NOW }, LIMITS);
    expect(over.ok || over.problems.map((p) => p.reason)).toEqual(['too_large']);
  });

  it('does not measure an event from a body too small to hold one over the limit', () => {
    const empty = Buffer.byteLength(JSON.stringify({ user_id: 'u', activity: 'a', p: '' }));
    const over = { user_id: 'u', activity: 'a', p: 'x'.repeat(LIMITS.maxEventBytes + 1 - empty) };
    // Said to come from a body that small, the event is taken as it is (it is not re-serialised);
    // an event cannot in truth be larger than that (the next test), so nothing over the cap passes.
    const small = Math.floor(LIMITS.maxEventBytes / MAX_RESERIALIZED_GROWTH);
    expect(validateEvent(over, { receivedAt: NOW }, LIMITS, small).ok).toBe(true);
    expect(validateIdentify(over, { receivedAt: NOW }, LIMITS, small).ok).toBe(true);
    // One byte more and it is measured: rejected for its size, with the field and the reason.
    for (const r of [
      validateEvent(over, { receivedAt: NOW }, LIMITS, small + 1),
      validateIdentify(over, { receivedAt: NOW }, LIMITS, small + 1),
    ]) {
      expect(r.ok || r.problems).toEqual([
        {
          reason: 'too_large',
          message: `event: ${LIMITS.maxEventBytes + 1} bytes exceeds the ${LIMITS.maxEventBytes}-byte limit`,
        },
      ]);
    }
  });

  it('re-serialises no body to more than MAX_RESERIALIZED_GROWTH times its size', () => {
    // The worst case: the shortest numbers that grow the most ("1e20" is 21 digits).
    for (const n of ['1e20', '-1e20', '9e20', '1e9', '1.234567890123456e-6']) {
      const text = `{"p":[${Array.from({ length: 50 }, () => n).join(',')}]}`;
      const grown = Buffer.byteLength(JSON.stringify(JSON.parse(text)));
      expect(grown, n).toBeGreaterThan(Buffer.byteLength(text));
      expect(grown, n).toBeLessThanOrEqual(Buffer.byteLength(text) * MAX_RESERIALIZED_GROWTH);
    }
    // Escapes shrink: what the source escaped, JSON.stringify writes as is (or escapes no longer).
    const escaped = '{"p":"\\u00e9\\ud83d\\ude00\\n\\u0001\\/"}';
    expect(Buffer.byteLength(JSON.stringify(JSON.parse(escaped)))).toBeLessThan(escaped.length);
  });

  it('allows maxKeys keys and array items, not one more, and counts arrays in the depth', () => {
    const keys = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 1]));
    expect(checkStructure(keys(LIMITS.maxKeys), LIMITS)).toBeUndefined();
    expect(checkStructure(keys(LIMITS.maxKeys + 1), LIMITS)?.reason).toBe('too_many_keys');
    expect(checkStructure({ a: [[[1]]] }, LIMITS)).toBeUndefined();
    expect(checkStructure({ a: [[[[1]]]] }, LIMITS)?.reason).toBe('too_deep');
  });

  it('caps depth and key count', () => {
    expect(checkStructure({ a: { b: { c: { d: { e: 1 } } } } }, LIMITS)?.reason).toBe('too_deep');
    expect(checkStructure({ a: Array.from({ length: 30 }, () => 1) }, LIMITS)?.reason).toBe('too_many_keys');
  });
});

describe('validateEvent', () => {
  it('normalizes values', () => {
    const r = validateEvent(
      { anonymous_id: 'a', activity: 'x', geo: { country_code: 'de' }, user: { birth_date: '1970-01-02' } },
      { receivedAt: NOW },
      LIMITS,
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.geo.country_code).toBe('DE');
    expect(r.value.user.birth_date).toBe(1);
    expect(r.value.activity_timestamp).toBe(NOW);
    expect(r.value.feature).toBe('');
  });

  it('reports every problem of an event at once', () => {
    const r = validateEvent(
      { activity: '', session_id: -1, device: { type: 3, x: 1 } },
      { receivedAt: NOW },
      LIMITS,
    );
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems.map((p) => p.message)).toEqual([
      'activity: must not be empty',
      'session_id: must be between 0 and 9007199254740990',
      'device.type: expected a string, got number',
      'user_id: required (user_id or anonymous_id)',
    ]);
  });

  it('takes a string session id (PostHog, web SDKs) as a stable integer and keeps the string', () => {
    const uuid = '0190a0b2-7c3e-7a1b-9d2e-3f4a5b6c7d8e';
    const a = validateEvent({ user_id: 'u', activity: 'a', session_id: uuid }, { receivedAt: NOW }, LIMITS);
    const b = validateEvent({ user_id: 'v', activity: 'b', session_id: uuid }, { receivedAt: NOW }, LIMITS);
    const other = validateEvent(
      { user_id: 'u', activity: 'a', session_id: 'other' },
      { receivedAt: NOW },
      LIMITS,
    );
    if (!a.ok || !b.ok || !other.ok) throw new Error('expected valid');
    expect(a.value.session_id).toBe(sessionNumber(uuid));
    expect(b.value.session_id).toBe(a.value.session_id);
    expect(other.value.session_id).not.toBe(a.value.session_id);
    expect(Number.isInteger(a.value.session_id)).toBe(true);
    expect(a.value.session_id).toBeLessThanOrEqual(CONTRACT.maxLong);
    expect(a.value.session_key).toBe(uuid);
    const n = validateEvent({ user_id: 'u', activity: 'a', session_id: 42 }, { receivedAt: NOW }, LIMITS);
    if (!n.ok) throw new Error('expected valid');
    expect([n.value.session_id, n.value.session_key]).toEqual([42, undefined]);
    const empty = validateEvent({ user_id: 'u', activity: 'a', session_id: '' }, { receivedAt: NOW }, LIMITS);
    expect(empty.ok).toBe(false);
  });

  it('refuses a detail without a non-empty type, or with a field besides type and payload', () => {
    const details = (d: unknown[]) =>
      validateEvent({ user_id: 'u', activity: 'a', details: d }, { receivedAt: NOW }, LIMITS);
    const ok = details([{ type: 'click', payload: { x: 1 } }, { type: 'view' }]);
    expect(ok.ok && ok.value.details).toEqual([
      { type: 'click', payload: { x: 1 } },
      { type: 'view', payload: null },
    ]);
    for (const [d, path] of [
      [[{ type: '' }], 'details[0].type'],
      [[{ type: 'click' }, 'x'], 'details[1]'],
      [[{ type: 'click', extra: 1 }], 'details[0].extra'],
    ] as const) {
      const r = details([...d]);
      expect(r.ok || r.problems.map((p) => p.message.split(':')[0])).toEqual([path]);
    }
  });

  it('warns about unknown nested fields', () => {
    const r = validateEvent(
      { user_id: 'u', activity: 'a', device: { colour: 'red' } },
      { receivedAt: NOW },
      LIMITS,
    );
    expect(r.ok && r.warnings).toEqual(['device.colour: unknown field (ignored)']);
  });
});

describe('validateIdentify', () => {
  it('splits traits into columns and attributes', () => {
    const r = validateIdentify(
      { user_id: 'u', traits: { gender: 'f', plan: 'pro' } },
      { receivedAt: NOW },
      LIMITS,
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.traits).toEqual({ gender: 'f' });
    expect(r.value.attributes).toEqual({ plan: 'pro' });
  });

  it('corrects identified_at by its own sent_at, as events are', () => {
    const r = validateIdentify(
      { user_id: 'u', timestamp: '2026-06-01T13:00:00Z', sent_at: '2026-06-01T13:00:00Z' },
      { receivedAt: NOW },
      LIMITS,
    );
    expect(r.ok && r.value.identified_at).toBe(NOW);
  });
});

describe('null as absent', () => {
  it('skips null fields, group fields, identify fields and traits instead of refusing them', () => {
    const e = validateEvent(
      {
        user_id: 'u',
        anonymous_id: null,
        activity: 'a',
        feature: null,
        geo: { city: null, country_code: 'FR' },
      },
      { receivedAt: NOW },
      LIMITS,
    );
    expect(e.ok ? e.warnings : e.problems).toEqual([]);
    expect(e.ok && [e.value.anonymous_id, e.value.geo]).toEqual([undefined, { country_code: 'FR' }]);
    const i = validateIdentify(
      { user_id: 'u', anonymous_id: null, traits: { gender: null, segment: 'pro' } },
      { receivedAt: NOW },
      LIMITS,
    );
    expect(i.ok ? i.warnings : i.problems).toEqual([]);
    expect(i.ok && [i.value.anonymous_id, i.value.traits]).toEqual([undefined, { segment: 'pro' }]);
  });
});
