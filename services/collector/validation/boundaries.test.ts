/**
 * The verdict the contract promises for every boundary value of every field (boundaries.ts), per
 * field kind: accepted and kept, dropped with a warning naming the field, or refused with a
 * problem naming it. test/integration/contract.test.ts drives the same values into ClickHouse but
 * holds only what is accepted to get through; StrykerJS showed that nothing pinned the verdicts
 * themselves (a UUID, country or boolean check that accepted anything survived).
 */
import { describe, expect, it } from 'vitest';
import { EVENT_FIELDS, type FieldSpec, IDENTIFY_TRAITS, type Kind } from '../../../schemas/native-api.ts';
import { limitsOf, readCollectorConfig } from '../config.ts';
import { type BoundaryCase, eventBoundaries, traitBoundaries, withValue } from './boundaries.ts';
import { validateEvent, validateIdentify } from './validate.ts';

type Verdict = 'accepted' | 'dropped' | 'refused';

// The collector's defaults, as it runs unconfigured (365 days back, 24 h ahead).
const LIMITS = limitsOf(readCollectorConfig({ WRITE_KEYS: 'test-key:test' }));
const NOW = Date.UTC(2026, 5, 1, 12);

const STRING = (max: number, o: { empty: Verdict; surrogate: Verdict }): Record<string, Verdict> => ({
  empty: o.empty,
  blank: o.empty,
  [`${max} chars`]: 'accepted',
  [`${max + 1} chars`]: 'refused',
  'NUL and control characters': 'accepted',
  // An identity must stay byte-exact to count as the same user; other text is repaired.
  'unpaired surrogate': o.surrogate,
  'astral and RTL': 'accepted',
  'quotes and backslashes': 'accepted',
});
const NUMBER = (o: { fraction: Verdict; string: Verdict; int32: Verdict }): Record<string, Verdict> => ({
  zero: 'accepted',
  'negative zero': 'accepted',
  'Infinity (JSON 1e400)': 'refused',
  'a string': o.string,
  'a fraction': o.fraction,
  min: 'accepted',
  'below min': 'refused',
  max: 'accepted',
  'above max': 'refused',
  '2^53 - 1': 'refused',
  'int32 max + 1': o.int32,
});
// Profile times outside what the columns hold are dropped (the event still counts).
const PROFILE_TIME: Record<string, Verdict> = {
  now: 'accepted',
  '1970-01-01': 'accepted',
  '1969-12-31T23:59:59Z': 'dropped',
  'end of 2105': 'accepted',
  '2106': 'dropped',
  'year 1': 'dropped',
  'year 9999': 'dropped',
  'no zone': 'refused',
};

const BY_KIND: Record<Kind, Record<string, Verdict>> = {
  uuid: { 'upper-case UUID': 'accepted', 'not a UUID': 'refused' },
  id: STRING(256, { empty: 'refused', surrogate: 'refused' }),
  name: STRING(200, { empty: 'refused', surrogate: 'accepted' }),
  text: STRING(1024, { empty: 'accepted', surrogate: 'accepted' }),
  country: { 'lower case': 'accepted', 'three letters': 'refused' },
  timestamp: PROFILE_TIME,
  date: {
    '1900-01-01': 'accepted',
    '1899-12-31': 'dropped',
    '1969-12-31': 'accepted',
    '2105-12-31': 'accepted',
    '2106-01-01': 'dropped',
    'year 1': 'dropped',
    'year 9999': 'dropped',
  },
  integer: NUMBER({ fraction: 'refused', string: 'refused', int32: 'refused' }),
  number: NUMBER({ fraction: 'accepted', string: 'refused', int32: 'refused' }),
  // A session id is an integer or a string id (a string number is an id, hence accepted).
  session: {
    ...NUMBER({ fraction: 'refused', string: 'accepted', int32: 'accepted' }),
    ...STRING(256, { empty: 'refused', surrogate: 'refused' }),
  },
  boolean: { true: 'accepted', 'a string': 'refused' },
  object: { empty: 'accepted', nested: 'accepted', 'an array': 'refused' },
  details: { empty: 'accepted', one: 'accepted', 'type missing': 'refused' },
};

// The event's own time must also lie within the age and future window: only "now" does.
const EVENT_TIME: Record<string, Verdict> = Object.fromEntries(
  Object.keys(PROFILE_TIME).map((label) => [label, label === 'now' ? 'accepted' : 'refused']),
);

function specAt(path: string): FieldSpec {
  const [head = '', tail] = path.split('.');
  if (head === 'traits') return IDENTIFY_TRAITS[tail as keyof typeof IDENTIFY_TRAITS];
  const s = EVENT_FIELDS[head as keyof typeof EVENT_FIELDS];
  return (s.kind === 'group' ? (s.fields as Record<string, FieldSpec>)[tail ?? ''] : s) as FieldSpec;
}

function expected(c: BoundaryCase): Verdict | undefined {
  if (c.path === 'timestamp') return EVENT_TIME[c.label];
  return BY_KIND[specAt(c.path).kind][c.label];
}

/** The value the validator kept for the field at `path` (top-level names as in ValidEvent). */
function keptAt(value: Record<string, unknown>, path: string): unknown {
  const [head = '', tail] = path.split('.');
  const top: Record<string, string> = { timestamp: 'original_timestamp' };
  const at = value[top[head] ?? head];
  return tail === undefined ? at : (at as Record<string, unknown>)[tail];
}

interface Seen {
  readonly verdict: Verdict;
  readonly named: boolean;
  readonly kept: boolean;
}

function verdictOf(c: BoundaryCase): Seen {
  const identify = c.path.startsWith('traits.');
  const input = withValue(identify ? { user_id: 'u' } : { user_id: 'u', activity: 'a' }, c.path, c.value);
  const r = identify
    ? validateIdentify(input, { receivedAt: NOW }, LIMITS)
    : validateEvent(input, { receivedAt: NOW }, LIMITS);
  if (!r.ok)
    return { verdict: 'refused', named: r.problems.some((p) => p.message.startsWith(c.path)), kept: false };
  const warned = r.warnings.some((w) => w.startsWith(`${c.path}:`));
  const value = r.value as unknown as Record<string, unknown>;
  const kept = identify
    ? (value.traits as Record<string, unknown>)[c.path.slice('traits.'.length)] !== undefined
    : keptAt(value, c.path) !== undefined;
  return { verdict: warned ? 'dropped' : 'accepted', named: warned, kept };
}

const cases = [...eventBoundaries(NOW), ...traitBoundaries(NOW)];

describe('the verdict of every boundary value', () => {
  it('has an expected verdict for every case boundaries.ts generates', () => {
    const missing = cases.filter((c) => expected(c) === undefined).map((c) => `${c.path} | ${c.label}`);
    expect(missing).toEqual([]);
    expect(cases.length).toBeGreaterThan(250);
  });

  it.each(cases.map((c) => [`${c.path} | ${c.label}`, c] as const))('%s', (_name, c) => {
    const seen = verdictOf(c);
    expect(seen.verdict).toBe(expected(c));
    // Refused and dropped values are named; accepted ones are kept, dropped ones are not.
    if (seen.verdict !== 'accepted') expect(seen.named).toBe(true);
    expect(seen.kept).toBe(seen.verdict === 'accepted');
  });
});
