/**
 * One source of truth: the HTTP JSON schema and the TS wire types are generated from spec.ts, and
 * this test holds spec.ts against the Avro contract in schemas/: every field names an Avro field
 * that exists, and a request that sets every field produces a record where each of them is set.
 */
import { describe, expect, it } from 'vitest';
import {
  EVENT_FIELDS,
  type FieldSpec,
  type GroupSpec,
  IDENTIFY_FIELDS,
  jsonSchema,
  type NativeEvent,
  type NativeIdentify,
} from '../../../schemas/native-api.ts';
import { AvroCodec } from '../../lib/avro.ts';
import { limitsOf, readCollectorConfig } from '../config.ts';
import { Enricher } from '../enrichment/records.ts';
import { toMessage } from '../publisher.ts';
import { validateEvent, validateIdentify } from './validate.ts';

const codec = new AvroCodec();
// The collector's defaults, as it runs unconfigured.
const LIMITS = limitsOf(readCollectorConfig({ WRITE_KEYS: 'test-key:test' }));

function avroFields(family: 'user_activity' | 'user_identify'): Map<string, unknown> {
  const t = codec.type(codec.writerId(family)) as unknown as {
    fields: Array<{ name: string; type: unknown }>;
  };
  return new Map(t.fields.map((f) => [f.name, f.type]));
}

function targets(fields: Readonly<Record<string, FieldSpec | GroupSpec>>): string[] {
  return Object.values(fields).flatMap((s) =>
    s.kind === 'group' ? targets(s.fields) : s.avro === undefined ? [] : [s.avro],
  );
}

const now = Date.now();
const iso = (ms: number) => new Date(ms).toISOString();

// `satisfies` makes this a compile-time check of the wire types, too.
const FULL_EVENT = {
  event_id: '6f1c1a4e-6a3b-4c55-9d2e-3f7b8a9c0d1e',
  user_id: 'u',
  anonymous_id: 'a',
  activity: 'login',
  feature: 'auth',
  timestamp: iso(now - 1_000),
  session_id: 1,
  duration_seconds: 2,
  device: {
    id: 'd',
    type: 'mobile',
    platform: 'ios',
    os_version: 'iOS 17',
    app_version: '1.0',
    browser_name: 'Safari',
    browser_version: '17',
  },
  geo: {
    country_code: 'FR',
    region_code: 'IDF',
    city: 'Paris',
    postal_code: '75001',
    latitude: 48.8,
    longitude: 2.3,
    timezone: 'Europe/Paris',
  },
  user: {
    registration_date: '2024-01-01',
    birth_date: '1990-01-01',
    gender: 'x',
    segment: 's',
    account_status: 'active',
    is_test_account: true,
    attributes: { k: 1 },
  },
  properties: { p: 1 },
  details: [{ type: 't', payload: { x: 1 } }],
} satisfies Required<NativeEvent>;

const FULL_IDENTIFY = {
  event_id: '6f1c1a4e-6a3b-4c55-9d2e-3f7b8a9c0d1f',
  user_id: 'u',
  anonymous_id: 'a',
  timestamp: iso(now - 1_000),
  sent_at: iso(now),
  traits: {
    registration_date: '2024-01-01T00:00:00Z',
    birth_date: '1990-01-01',
    gender: 'x',
    segment: 's',
    segment_description: 'd',
    segment_category: 'c',
    account_status: 'active',
    is_test_account: false,
    country_code: 'FR',
    plan: 'pro',
  },
} satisfies Required<NativeIdentify>;

const ctx = {
  source: 'test',
  receivedAt: now,
  sentAt: now,
  ip: '192.0.2.1',
  userAgent: 'ua',
  scope: 'all' as const,
};
const enricher = new Enricher({ anonymizeIp: true, geo: undefined, geoAddress: 'full', fineGeo: true });

describe('the native contract agrees with the Avro schemas', () => {
  it('names only Avro fields that exist', () => {
    const activity = avroFields('user_activity');
    const identify = avroFields('user_identify');
    for (const t of targets(EVENT_FIELDS)) expect(activity.has(t), t).toBe(true);
    for (const t of targets(IDENTIFY_FIELDS)) expect(identify.has(t), t).toBe(true);
  });

  it('generates a JSON schema with exactly the spec fields', () => {
    const s = jsonSchema(EVENT_FIELDS, 'event') as { properties: Record<string, { properties?: object }> };
    expect(Object.keys(s.properties)).toEqual(Object.keys(EVENT_FIELDS));
    expect(Object.keys(s.properties.device?.properties ?? {})).toEqual(
      Object.keys(EVENT_FIELDS.device.fields),
    );
  });

  it('carries every field of a full event into the Avro record', () => {
    const r = validateEvent(FULL_EVENT, { receivedAt: now }, LIMITS);
    expect(r.ok && r.warnings).toEqual([]);
    if (!r.ok) return;
    const record = enricher.activity(r.value, ctx);
    const decoded = codec.decode(
      codec.writerId('user_activity'),
      toMessage(codec, { family: 'user_activity', record }).value,
    ).value;
    for (const t of targets(EVENT_FIELDS)) {
      expect(decoded[t], t).not.toBeNull();
      expect(decoded[t], t).not.toBe(avroDefault('user_activity', t));
    }
  });

  it('carries every field of a full identify into the Avro record', () => {
    const r = validateIdentify(FULL_IDENTIFY, { receivedAt: now }, LIMITS);
    expect(r.ok && r.warnings).toEqual([]);
    if (!r.ok) return;
    const record = enricher.identify(r.value, ctx);
    const decoded = codec.decode(
      codec.writerId('user_identify'),
      toMessage(codec, { family: 'user_identify', record }).value,
    ).value;
    for (const t of targets(IDENTIFY_FIELDS)) expect(decoded[t], t).not.toBeNull();
    expect(decoded.user_attributes).toBe('{"plan":"pro"}');
  });
});

function avroDefault(family: 'user_activity' | 'user_identify', field: string): unknown {
  const t = codec.type(codec.writerId(family)) as unknown as {
    fields: Array<{ name: string; defaultValue(): unknown }>;
  };
  const f = t.fields.find((x) => x.name === field);
  const d = f?.defaultValue();
  // Only scalar defaults are comparable by identity; arrays/records are checked for null above.
  return typeof d === 'object' ? Symbol('no scalar default') : d;
}
