import { describe, expect, it } from 'vitest';
import { eventIdFor, mapSegment, messageContext, SEGMENT_CONTEXT_KEYS } from './map.ts';

const o = { featureProperty: 'feature', featureMap: new Map([['Order Completed', 'checkout']]) };

describe('mapSegment', () => {
  it('maps a track call with context to the native event shape', () => {
    const m = mapSegment(
      {
        type: 'track',
        event: 'Order Completed',
        userId: 'u1',
        messageId: 'node-next-1-abc',
        timestamp: '2026-01-01T00:00:00.000Z',
        properties: { total: 10 },
        context: {
          ip: '203.0.113.5',
          userAgent: 'UA',
          device: { id: 'd1', type: 'ios' },
          os: { name: 'iOS', version: '17.4' },
          app: { version: '2.0' },
          location: { country: 'US', city: 'Austin' },
          timezone: 'America/Chicago',
        },
      },
      undefined,
      o,
    );
    expect(m).toEqual({
      kind: 'activity',
      context: { ip: '203.0.113.5', userAgent: 'UA', sentAt: undefined },
      event: {
        event_id: eventIdFor('node-next-1-abc'),
        user_id: 'u1',
        timestamp: '2026-01-01T00:00:00.000Z',
        activity: 'Order Completed',
        feature: 'checkout',
        device: { id: 'd1', type: 'mobile', platform: 'ios', os_version: 'iOS 17.4', app_version: '2.0' },
        geo: { country_code: 'US', city: 'Austin', timezone: 'America/Chicago' },
        properties: { total: 10 },
      },
    });
  });

  it('prefers the feature property over the map', () => {
    const m = mapSegment(
      { event: 'Order Completed', userId: 'u', properties: { feature: 'cart' } },
      'track',
      o,
    );
    expect(m.kind === 'activity' && m.event.feature).toBe('cart');
  });

  it('maps identify traits and alias ids', () => {
    const id = mapSegment(
      {
        userId: 'u',
        traits: { createdAt: '2024-01-01T00:00:00Z', birthday: '1990-02-03T00:00:00Z', plan: 'x' },
      },
      'identify',
      o,
    );
    expect(id.kind === 'identify' && id.identify.traits).toEqual({
      registration_date: '2024-01-01T00:00:00Z',
      birth_date: '1990-02-03',
      plan: 'x',
    });
    const alias = mapSegment({ type: 'alias', userId: 'u', previousId: 'anon' }, undefined, o);
    expect(alias.kind === 'alias' && alias.previousId).toBe('anon');
  });

  it('reads an empty userId (RudderStack before identify) as no user', () => {
    const m = mapSegment({ event: 'x', userId: '', anonymousId: 'a' }, 'track', o);
    expect(m.kind === 'activity' && m.event).toMatchObject({ anonymous_id: 'a' });
    expect(m.kind === 'activity' && Object.hasOwn(m.event, 'user_id')).toBe(false);
  });

  it("keeps IANA time zones and drops RudderStack's GMT offsets (which would turn off the IP lookup)", () => {
    const zone = (timezone: string) => {
      const m = mapSegment({ event: 'x', anonymousId: 'a', context: { timezone } }, 'track', o);
      return m.kind === 'activity' ? m.event.geo : 'not an activity';
    };
    expect(zone('America/Argentina/Buenos_Aires')).toEqual({ timezone: 'America/Argentina/Buenos_Aires' });
    expect(zone('UTC')).toEqual({ timezone: 'UTC' });
    expect(zone('GMT+0530')).toBeUndefined();
    expect(zone('NA')).toBeUndefined();
  });

  it("leaves RudderStack's browser SDK out of the device (it names itself in context.app)", () => {
    const m = mapSegment(
      {
        event: 'x',
        anonymousId: 'a',
        context: {
          app: {
            name: 'RudderLabs JavaScript SDK',
            namespace: 'com.rudderlabs.javascript',
            version: '3.34.1',
          },
          os: { name: '', version: '' },
        },
      },
      'track',
      o,
    );
    expect(m.kind === 'activity' && Object.hasOwn(m.event, 'device')).toBe(false);
  });

  it('names the problem for unknown types', () => {
    expect(mapSegment({ type: 'boom' }, undefined, o)).toEqual({
      kind: 'error',
      message: 'type: expected one of track, page, screen, identify, group, alias',
    });
  });
});

describe('eventIdFor', () => {
  it('keeps UUIDs and derives stable UUIDs from other ids', () => {
    expect(eventIdFor('6F1C1A4E-6A3B-4C55-9D2E-3F7B8A9C0D1E')).toBe('6f1c1a4e-6a3b-4c55-9d2e-3f7b8a9c0d1e');
    const a = eventIdFor('ajs-next-123');
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(eventIdFor('ajs-next-123')).toBe(a);
  });
});

describe('messageContext', () => {
  it("takes each field mapSegment reads from the message's context, else the batch's, and nothing else", () => {
    const batch: Record<string, unknown> = {
      ip: '192.0.2.1',
      device: { type: 'ios' },
      library: { name: 'x' },
    };
    for (let i = 0; i < 10_000; i += 1) batch[`k${i}`] = i;
    const ctx = messageContext(batch, { ip: '198.51.100.7', userAgent: 'ua' });
    expect(ctx).toEqual({ ip: '198.51.100.7', userAgent: 'ua', device: { type: 'ios' } });
    expect(Object.keys(messageContext(batch, undefined)).length).toBeLessThanOrEqual(
      SEGMENT_CONTEXT_KEYS.length,
    );
    // Inherited properties are not context fields.
    expect(messageContext(Object.create({ ip: 'inherited' }), {})).toEqual({});
  });
});
