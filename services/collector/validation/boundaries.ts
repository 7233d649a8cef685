/**
 * Boundary inputs generated from the contract tables of spec.ts: for every field, values at and
 * just past each bound of its kind (numbers at min/max and beyond, instants at 1970 / 2105 / year
 * 1 / 9999, dates at 1900 / 2105 and beyond, strings empty, at and past their cap, with control
 * characters and unpaired surrogates). The contract tests drive each one through validation,
 * Avro and a real ClickHouse insert: whatever validation accepts must get all the way through.
 * A field added to spec.ts gets its boundaries here without anyone writing them.
 */

import {
  EVENT_FIELDS,
  type FieldSpec,
  type GroupSpec,
  IDENTIFY_TRAITS,
  MAX_ID_LENGTH,
  MAX_NAME_LENGTH,
  MAX_TEXT_LENGTH,
} from '../../../schemas/native-api.ts';
import { CONTRACT } from '../../../schemas/records.ts';

export interface BoundaryCase {
  /** Field path as problems and warnings name it, e.g. "geo.latitude". */
  readonly path: string;
  readonly label: string;
  readonly value: unknown;
}

const iso = (ms: number): string => new Date(ms).toISOString();

function strings(max: number): Array<[string, string]> {
  return [
    ['empty', ''],
    ['blank', '   '],
    [`${max} chars`, 'x'.repeat(max)],
    [`${max + 1} chars`, 'x'.repeat(max + 1)],
    ['NUL and control characters', 'a\u0000b\u0001c\u001fd\u007f'],
    ['unpaired surrogate', 'a\ud800b'],
    ['astral and RTL', '😀\u202eabc'],
    ['quotes and backslashes', `"'\\\n\t`],
  ];
}

function valuesFor(spec: FieldSpec, now: number): Array<[string, unknown]> {
  switch (spec.kind) {
    case 'uuid':
      return [
        ['upper-case UUID', '6F1C1A4E-6A3B-4C55-9D2E-3F7B8A9C0D1E'],
        ['not a UUID', 'not-a-uuid'],
      ];
    case 'id':
      return strings(MAX_ID_LENGTH);
    case 'name':
      return strings(MAX_NAME_LENGTH);
    case 'text':
      return strings(MAX_TEXT_LENGTH);
    case 'country':
      return [
        ['lower case', 'fr'],
        ['three letters', 'FRA'],
      ];
    case 'timestamp':
      return [
        ['now', iso(now)],
        ['1970-01-01', '1970-01-01T00:00:00Z'],
        ['1969-12-31T23:59:59Z', '1969-12-31T23:59:59Z'],
        ['end of 2105', '2105-12-31T23:59:59.999Z'],
        ['2106', '2106-03-01T00:00:00Z'],
        ['year 1', '0001-01-01T00:00:00Z'],
        ['year 9999', '9999-12-31T23:59:59Z'],
        ['no zone', '2024-01-01T00:00:00'],
      ];
    case 'date':
      return [
        ['1900-01-01', '1900-01-01'],
        ['1899-12-31', '1899-12-31'],
        ['1969-12-31', '1969-12-31'],
        ['2105-12-31', '2105-12-31'],
        ['2106-01-01', '2106-01-01'],
        ['year 1', '0001-01-01'],
        ['year 9999', '9999-12-31'],
      ];
    case 'session':
      // Both forms: the integer's bounds (below) and string ids.
      return [...valuesFor({ ...spec, kind: 'integer' }, now), ...strings(MAX_ID_LENGTH)];
    case 'integer':
    case 'number': {
      const out: Array<[string, unknown]> = [
        ['zero', 0],
        ['negative zero', -0],
        ['Infinity (JSON 1e400)', Number.POSITIVE_INFINITY],
        ['a string', '1'],
        ['a fraction', 0.5],
      ];
      if (spec.min !== undefined) out.push(['min', spec.min], ['below min', spec.min - 1]);
      if (spec.max !== undefined) out.push(['max', spec.max], ['above max', spec.max + 2]);
      out.push(['2^53 - 1', Number.MAX_SAFE_INTEGER], ['int32 max + 1', CONTRACT.maxInt + 1]);
      return out;
    }
    case 'boolean':
      return [
        ['true', true],
        ['a string', 'true'],
      ];
    case 'object':
      return [
        ['empty', {}],
        ['nested', { a: { b: [1, 'x', null] }, 'k\u0000': 'v' }],
        ['an array', [1]],
      ];
    case 'details':
      return [
        ['empty', []],
        ['one', [{ type: 'click', payload: { x: 1 } }]],
        ['type missing', [{ payload: 1 }]],
      ];
  }
}

function casesOf(
  fields: Readonly<Record<string, FieldSpec | GroupSpec>>,
  now: number,
  prefix = '',
): BoundaryCase[] {
  return Object.entries(fields).flatMap(([name, s]) => {
    const path = `${prefix}${name}`;
    if (s.kind === 'group') return casesOf(s.fields, now, `${path}.`);
    return valuesFor(s, now).map(([label, value]) => ({ path, label, value }));
  });
}

/** Sets `value` at a dotted `path` of a copy of `base`. */
export function withValue(
  base: Record<string, unknown>,
  path: string,
  value: unknown,
): Record<string, unknown> {
  const out: Record<string, unknown> = structuredClone(base);
  const keys = path.split('.');
  let at = out;
  for (const k of keys.slice(0, -1)) {
    const next = at[k];
    at[k] = typeof next === 'object' && next !== null ? { ...(next as Record<string, unknown>) } : {};
    at = at[k] as Record<string, unknown>;
  }
  at[keys[keys.length - 1] as string] = value;
  return out;
}

/** Every boundary of every native event field (paths as in EVENT_FIELDS). */
export function eventBoundaries(now: number): BoundaryCase[] {
  return casesOf(EVENT_FIELDS, now);
}

/** Every boundary of every identify trait (paths "traits.<name>"). */
export function traitBoundaries(now: number): BoundaryCase[] {
  return casesOf(IDENTIFY_TRAITS, now, 'traits.');
}
