import { describe, expect, it } from 'vitest';
import { envelopeOf, mapPostHog, type PostHogOptions, type RequestFacts } from './map.ts';

const o: PostHogOptions = {
  featureProperty: 'feature',
  featureMap: new Map([
    ['page_view', 'browse'],
    ['$rageclick', 'frustration'],
  ]),
  featureFrom: ['property', 'map'],
};
const r: RequestFacts = {
  receivedAt: Date.parse('2026-01-01T00:00:10.000Z'),
  sentAtMs: undefined,
  key: 'phc',
};
const UUID = '01a22b3c-6bf4-7b5f-8bd9-3fa428a9daf4';
const SESSION = '01a22b3c-6c08-7949-9e7b-038586c554f0';
const BODY = { api_key: 'k', batch: [{ event: 'x', distinct_id: 'u' }], sent_at: '2026-01-01T00:00:00Z' };

describe('envelopeOf', () => {
  it('unwraps the batch envelope, a bare array and a single event, finding the key', () => {
    expect(envelopeOf(BODY)).toEqual({ writeKey: 'k', events: BODY.batch, sentAt: BODY.sent_at });
    const jsEvent = { event: 'x', properties: { token: 'phc', distinct_id: 'u' } };
    expect(envelopeOf({ batch: [jsEvent] })).toMatchObject({ writeKey: 'phc' });
    expect(envelopeOf([jsEvent])).toEqual({ writeKey: 'phc', events: [jsEvent], sentAt: undefined });
    expect(envelopeOf({ ...jsEvent, api_key: 'k2' })).toMatchObject({
      writeKey: 'k2',
      events: [{ event: 'x' }],
    });
    expect(envelopeOf({ batch: {} })).toEqual({ error: 'batch: expected an array' });
    expect(envelopeOf('x')).toEqual({ error: 'body: expected a JSON object or array' });
  });
});

describe('mapPostHog', () => {
  it('maps a posthog-js pageview: anonymous id, session, device, page properties, no SDK context or key', () => {
    const m = mapPostHog(
      {
        uuid: UUID,
        event: '$pageview',
        timestamp: '2026-01-01T00:00:00.000Z',
        properties: {
          distinct_id: 'anon-1',
          $device_id: 'anon-1',
          $is_identified: false,
          $session_id: SESSION,
          $os: 'Linux',
          $browser: 'Chrome',
          $browser_version: 131,
          $device_type: 'Desktop',
          $lib: 'web',
          $current_url: 'https://app.example/search?q=1',
          $pathname: '/search',
          $raw_user_agent: 'UA',
          $insert_id: 'abc',
          $set_once: { $initial_referrer: '$direct' },
          token: 'phc',
          title: 'Search',
        },
      },
      o,
      r,
    );
    expect(m).toEqual({
      kind: 'activity',
      context: { ip: undefined, userAgent: 'UA', sentAt: undefined },
      event: {
        event_id: UUID,
        timestamp: '2026-01-01T00:00:00.000Z',
        anonymous_id: 'anon-1',
        activity: 'page_view',
        feature: 'browse',
        session_id: SESSION,
        device: {
          id: 'anon-1',
          type: 'desktop',
          platform: 'web',
          os_version: 'Linux',
          browser_name: 'Chrome',
          browser_version: '131',
        },
        properties: { title: 'Search', url: 'https://app.example/search?q=1', path: '/search' },
      },
    });
  });

  it('keeps the anonymous id of an identified browser event, and the $set riding on it as user fields', () => {
    const m = mapPostHog(
      {
        event: 'Report Exported',
        $set: { plan: 'pro', segment: 'smb' },
        properties: { distinct_id: 'user-1', $device_id: 'anon-1', $is_identified: true, token: 'phc' },
      },
      o,
      r,
    );
    expect(m).toMatchObject({
      kind: 'activity',
      event: {
        user_id: 'user-1',
        anonymous_id: 'anon-1',
        activity: 'Report Exported',
        user: { segment: 'smb', attributes: { plan: 'pro' } },
      },
    });
  });

  it('maps a posthog-node capture: the distinct id is the user, feature from the property, $ip relayed', () => {
    const m = mapPostHog(
      {
        distinct_id: 42,
        event: 'Search Performed',
        uuid: UUID,
        properties: { feature: 'search', q: 'x', $lib: 'posthog-node', $ip: '203.0.113.5' },
      },
      o,
      r,
    );
    expect(m).toMatchObject({
      kind: 'activity',
      context: { ip: '203.0.113.5' },
      event: {
        user_id: '42',
        activity: 'Search Performed',
        feature: 'search',
        properties: { feature: 'search', q: 'x' },
      },
    });
    expect(m.kind === 'activity' && [m.event.device, m.event.anonymous_id]).toEqual([undefined, undefined]);
  });

  it('takes the feature from the configured sources in order', () => {
    const e = {
      event: 'clicked',
      distinct_id: 'u',
      properties: { $current_url: 'https://app.example/billing/invoices?x=1' },
    };
    const feature = (featureFrom: PostHogOptions['featureFrom'], event: unknown = e) => {
      const m = mapPostHog(event, { ...o, featureFrom }, r);
      return m.kind === 'activity' ? m.event.feature : undefined;
    };
    expect(feature(['property', 'map'])).toBeUndefined();
    expect(feature(['property', 'path', 'event'])).toBe('billing');
    expect(feature(['event'])).toBe('clicked');
    // The map takes PostHog's own event names too; PostHog's events name no feature of the product.
    expect(feature(['map'], { ...e, event: '$rageclick' })).toBe('frustration');
    expect(feature(['event'], { ...e, event: '$autocapture' })).toBeUndefined();
    // A path segment too long for the column is no feature, rather than a rejected event.
    const long = { ...e, properties: { $pathname: `/${'x'.repeat(300)}` } };
    expect(feature(['path', 'event'], long)).toBe('clicked');
  });

  it('maps $identify (posthog-js: $set at the top; posthog-node: in properties) to a profile and a link', () => {
    const js = mapPostHog(
      {
        uuid: UUID,
        event: '$identify',
        properties: { distinct_id: 'user-1', $anon_distinct_id: 'anon-1', $set: { ignored: 1 } },
        $set: { plan: 'pro', createdAt: '2025-01-01' },
        $set_once: { plan: 'free', first: 'x', $initial_referrer: '$direct', utm_source: null },
      },
      o,
      r,
    );
    expect(js).toEqual({
      kind: 'identify',
      context: { ip: undefined, userAgent: undefined, sentAt: undefined },
      identify: {
        event_id: UUID,
        user_id: 'user-1',
        anonymous_id: 'anon-1',
        traits: { plan: 'pro', first: 'x', ignored: 1, registration_date: '2025-01-01' },
      },
    });
    const node = mapPostHog(
      { event: '$set', distinct_id: 'user-1', properties: { $set: { plan: 'team' } } },
      o,
      r,
    );
    expect(node).toMatchObject({
      kind: 'identify',
      identify: { user_id: 'user-1', traits: { plan: 'team' } },
    });
    expect(node.kind === 'identify' && node.identify.anonymous_id).toBeUndefined();
  });

  it('maps $create_alias to an alias of distinct_id and an offset to a time before sending', () => {
    expect(
      mapPostHog(
        {
          event: '$create_alias',
          distinct_id: 'user-1',
          properties: { distinct_id: 'user-1', alias: 'old' },
        },
        o,
        r,
      ),
    ).toMatchObject({ kind: 'alias', identify: { user_id: 'user-1' }, previousId: 'old' });
    const m = mapPostHog({ event: 'x', distinct_id: 'u', offset: 4_000 }, o, {
      ...r,
      sentAtMs: Date.parse('2026-01-01T00:00:05.000Z'),
    });
    expect(m.kind === 'activity' && m.event.timestamp).toBe('2026-01-01T00:00:01.000Z');
  });

  it('maps a group identify with a user to a group activity, and refuses one with a placeholder user', () => {
    const props = { $group_type: 'company', $group_key: 'acme', $group_set: { seats: 5 } };
    expect(
      mapPostHog({ event: '$groupidentify', distinct_id: 'user-1', properties: props }, o, r),
    ).toMatchObject({
      kind: 'activity',
      event: {
        user_id: 'user-1',
        activity: 'group',
        properties: { group_type: 'company', group_key: 'acme', group_traits: { seats: 5 } },
      },
    });
    expect(
      mapPostHog({ event: '$groupidentify', distinct_id: '$company_acme', properties: props }, o, r),
    ).toMatchObject({ kind: 'error', message: expect.stringMatching(/^distinct_id: a group placeholder/) });
  });

  it('refuses what is not an event, another project token and unsupported payloads; leaves field checks to validation', () => {
    expect(mapPostHog('x', o, r)).toEqual({ kind: 'error', message: 'event: expected an object' });
    expect(mapPostHog({ distinct_id: 'u' }, o, r)).toMatchObject({
      kind: 'error',
      message: /^event: required/,
    });
    expect(mapPostHog({ event: 'x' }, o, r)).toEqual({ kind: 'error', message: 'distinct_id: required' });
    expect(mapPostHog({ event: 'x', distinct_id: 'u', properties: [] }, o, r)).toMatchObject({
      kind: 'error',
      message: 'properties: expected an object',
    });
    expect(mapPostHog({ event: 'x', properties: { distinct_id: 'u', token: 'other' } }, o, r)).toMatchObject({
      kind: 'error',
      message: /^token:/,
    });
    expect(mapPostHog({ event: '$snapshot', distinct_id: 'u' }, o, r)).toMatchObject({
      kind: 'error',
      message: /recordings are not supported/,
    });
    expect(mapPostHog({ event: 'x', distinct_id: 'u', uuid: 'nope' }, o, r)).toMatchObject({
      kind: 'activity',
      event: { event_id: 'nope' },
    });
  });
});
