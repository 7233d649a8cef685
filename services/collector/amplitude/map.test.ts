import { describe, expect, it } from 'vitest';
import { parseUserAgent } from '../enrichment/user-agent.ts';
import { amplitudeFieldOf, eventIdFor, mapAmplitude, rejectionFields } from './map.ts';

const o = {
  featureProperty: 'feature',
  featureMap: new Map([['Order Completed', 'checkout']]),
  userAgent: parseUserAgent,
};
const CHROME =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36';
const INSERT_ID = '6F1C1A4E-6A3B-4C55-9D2E-3F7B8A9C0D1E';

describe('mapAmplitude', () => {
  it('maps an event from analytics-node to the native event shape', () => {
    const m = mapAmplitude(
      {
        event_type: 'Order Completed',
        user_id: 'user-1',
        device_id: 'device-1',
        insert_id: INSERT_ID,
        event_id: 7,
        time: Date.UTC(2026, 0, 1),
        session_id: 1_767_225_600_000,
        event_properties: { total: 10 },
        platform: 'iOS',
        os_name: 'iOS',
        os_version: '17.4',
        app_version: '2.0',
        country: 'US',
        city: 'Austin',
        ip: '203.0.113.5',
        price: 5,
        library: 'amplitude-node-ts/1.5.73',
      },
      o,
      undefined,
    );
    expect(m).toEqual({
      kind: 'activity',
      context: { ip: '203.0.113.5', userAgent: undefined },
      warnings: [],
      event: {
        event_id: INSERT_ID.toLowerCase(),
        user_id: 'user-1',
        anonymous_id: 'device-1',
        timestamp: '2026-01-01T00:00:00.000Z',
        activity: 'Order Completed',
        feature: 'checkout',
        session_id: 1_767_225_600_000,
        device: {
          id: 'device-1',
          type: 'mobile',
          platform: 'ios',
          os_version: 'iOS 17.4',
          app_version: '2.0',
        },
        geo: { country_code: 'US', city: 'Austin' },
        properties: { price: 5, total: 10 },
      },
    });
  });

  it('fills what a browser event leaves out from its user agent, and treats -1 as no session', () => {
    const m = mapAmplitude(
      {
        event_type: 'click',
        device_id: 'd',
        platform: 'Web',
        ip: '$remote',
        session_id: -1,
        user_agent: CHROME,
        event_properties: { feature: 'search' },
      },
      o,
      'some other agent',
    );
    expect(m.kind === 'activity' && m.event).toMatchObject({
      feature: 'search',
      device: {
        id: 'd',
        type: 'desktop',
        platform: 'web',
        browser_name: 'Chrome',
        browser_version: '120.0.0.0',
      },
    });
    expect(m.kind === 'activity' && m.event.session_id).toBeUndefined();
    expect(m.kind === 'activity' && m.context).toEqual({ ip: undefined, userAgent: CHROME });
  });

  it('maps $identify to a profile update with the values its user_properties set', () => {
    const m = mapAmplitude(
      {
        event_type: '$identify',
        user_id: 'u',
        device_id: 'd',
        insert_id: 'custom-id',
        user_properties: {
          plain: 1,
          $setOnce: { initial_referrer: 'x', plan: 'free' },
          $set: { plan: 'pro', gender: 'f' },
          $add: { logins: 1 },
        },
      },
      o,
      undefined,
    );
    expect(m).toEqual({
      kind: 'identify',
      context: { ip: undefined, userAgent: undefined },
      warnings: ['user_properties.$add: operation not supported (ignored)'],
      identify: {
        event_id: eventIdFor('custom-id'),
        user_id: 'u',
        anonymous_id: 'd',
        traits: { plain: 1, initial_referrer: 'x', plan: 'pro', gender: 'f' },
      },
    });
  });

  it('keeps user_properties of other events as the user attributes as of the event', () => {
    const m = mapAmplitude(
      { event_type: 'x', user_id: 'u', user_properties: { $set: { plan: 'pro' } } },
      o,
      undefined,
    );
    expect(m.kind === 'activity' && m.event.user).toEqual({ attributes: { plan: 'pro' } });
  });

  it('refuses what Amplitude requires or cannot be read, naming the field', () => {
    const cases: Array<[unknown, string, boolean]> = [
      [{ user_id: 'u' }, 'event_type', true],
      [{ event_type: 'x' }, 'user_id', true],
      [{ event_type: 'x', user_id: '', device_id: '' }, 'user_id', true],
      [{ event_type: 5, user_id: 'u' }, 'event_type', false],
      [{ event_type: 'x', user_id: 'u', time: '2026-01-01' }, 'time', false],
      [{ event_type: 'x', user_id: 'u', time: 1e300 }, 'time', false],
      [{ event_type: 'x', user_id: 'u', insert_id: 5 }, 'insert_id', false],
      [{ event_type: 'x', user_id: 'u', user_properties: { $set: [1] } }, 'user_properties', false],
      [{ event_type: '$groupidentify', user_id: 'u' }, 'event_type', false],
      ['not an event', 'event', false],
    ];
    for (const [raw, field, missing] of cases) {
      expect(mapAmplitude(raw, o, undefined)).toMatchObject({ kind: 'error', field, missing });
    }
  });

  it('reads a null or empty user_id as no user', () => {
    for (const user_id of [null, '']) {
      const m = mapAmplitude({ event_type: 'x', user_id, device_id: 'd' }, o, undefined);
      expect(m.kind === 'activity' && m.event).toMatchObject({ anonymous_id: 'd' });
      expect(m.kind === 'activity' && Object.hasOwn(m.event, 'user_id')).toBe(false);
    }
  });

  it('leaves a non-object event_properties for validation to name', () => {
    const m = mapAmplitude({ event_type: 'x', user_id: 'u', event_properties: 'nope' }, o, undefined);
    expect(m.kind === 'activity' && m.event.properties).toBe('nope');
  });
});

describe('eventIdFor', () => {
  it('keeps UUIDs and derives stable UUIDs from other insert ids', () => {
    expect(eventIdFor(INSERT_ID)).toBe(INSERT_ID.toLowerCase());
    const a = eventIdFor('order-17');
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(eventIdFor('order-17')).toBe(a);
  });
});

describe('rejectionFields', () => {
  it('names validation problems by the Amplitude field they came from', () => {
    expect(amplitudeFieldOf('activity: longer than 200 characters')).toBe('event_type');
    expect(amplitudeFieldOf('device.id: must not be empty')).toBe('device_id');
    expect(amplitudeFieldOf('traits.birth_date: not a YYYY-MM-DD date')).toBe('user_properties');
    expect(amplitudeFieldOf('event: 40000 bytes exceeds the 32768-byte limit')).toBe('event');
  });

  it('groups indices per field, missing apart from invalid, whatever the field is named', () => {
    const r = rejectionFields(
      [
        { index: 0, errors: ['event_type: required'] },
        { index: 2, errors: ['session_id: must be between 0 and 9', 'timestamp: older than 365 days'] },
        { index: 3, errors: ['session_id: must be an integer'] },
        { index: 4, errors: ['__proto__: forbidden key'] },
      ],
      new Map([[0, { field: 'event_type', missing: true }]]),
    );
    expect(r.events_with_missing_fields).toEqual({ event_type: [0] });
    expect(r.events_with_invalid_fields).toEqual({ session_id: [2, 3], time: [2], ['__proto__']: [4] });
    expect(Object.hasOwn(r.events_with_invalid_fields, '__proto__')).toBe(true);
  });
});
