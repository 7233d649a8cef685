import { describe, expect, it } from 'vitest';
import { validateEvent } from '../validation/validate.ts';
import { countryInfo } from './countries.ts';
import type { GeoLookup } from './geo.ts';
import { anonymizeIp } from './ip.ts';
import { Enricher } from './records.ts';
import { parseUserAgent } from './user-agent.ts';

describe('anonymizeIp', () => {
  it.each([
    ['203.0.113.77', '203.0.113.0'],
    ['2001:db8:85a3:8d3:1319:8a2e:370:7348', '2001:db8:85a3::'],
    ['2001:db8::1', '2001:db8:0::'],
    ['::ffff:198.51.100.9', '::ffff:198.51.100.0'],
  ])('%s -> %s', (ip, out) => expect(anonymizeIp(ip)).toBe(out));

  it('drops what is not an IP', () => expect(anonymizeIp('unknown')).toBeUndefined());
});

describe('parseUserAgent', () => {
  it('reads a desktop browser', () => {
    expect(
      parseUserAgent(
        'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15',
      ),
    ).toEqual({
      device_type: 'desktop',
      platform: 'web',
      os_version: 'Mac OS 10.15.7',
      browser_name: 'Safari',
      browser_version: '17.4',
      is_bot: false,
    });
  });

  it('reads a phone', () => {
    const r = parseUserAgent(
      'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
    );
    expect(r.device_type).toBe('mobile');
    expect(r.os_version).toBe('iOS 17.4');
  });

  it('flags crawlers but not server SDKs relaying their users', () => {
    expect(
      parseUserAgent('Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)').is_bot,
    ).toBe(true);
    expect(parseUserAgent('analytics-node-next/latest')).toMatchObject({
      device_type: 'server',
      is_bot: false,
    });
    // isbot() flags it; it is the server SDK relaying its users' events.
    expect(parseUserAgent('posthog-node/5.70.0')).toMatchObject({ device_type: 'server', is_bot: false });
  });
});

describe('countryInfo', () => {
  it('names countries and places them on a continent', () => {
    expect(countryInfo('BR')).toEqual({ continentCode: 'SA', countryName: 'Brazil' });
    expect(countryInfo('JP')).toEqual({ continentCode: 'AS', countryName: 'Japan' });
  });
  it('leaves unknown codes without a continent', () =>
    expect(countryInfo('QZ').continentCode).toBeUndefined());
});

const LIMITS = {
  maxEventBytes: 32_768,
  maxDepth: 10,
  maxKeys: 100,
  maxAgeMs: 1e10,
  maxFutureMs: 1e8,
  maxSkewCorrectionMs: 1e8,
};

describe('Enricher.activity client_ip', () => {
  const event = validateEvent({ user_id: 'u', activity: 'a' }, { receivedAt: Date.now() }, LIMITS);
  const ctx = (ip: string) => ({
    source: 's',
    receivedAt: Date.now(),
    sentAt: undefined,
    ip,
    userAgent: undefined,
    scope: 'all' as const,
  });

  it('keeps only addresses, even with anonymization off (a relayed context.ip is any string)', () => {
    if (!event.ok) throw new Error('fixture invalid');
    const raw = new Enricher({ anonymizeIp: false, geo: undefined, geoAddress: 'full', fineGeo: true });
    expect(raw.activity(event.value, ctx('198.51.100.9')).client_ip).toBe('198.51.100.9');
    expect(raw.activity(event.value, ctx('x'.repeat(4_000))).client_ip).toBeNull();
  });
});

describe('geo privacy settings', () => {
  const event = validateEvent(
    {
      user_id: 'u',
      activity: 'a',
      geo: { city: 'Lyon', postal_code: '69001', latitude: 45.7, longitude: 4.8 },
    },
    { receivedAt: Date.now() },
    LIMITS,
  );
  const ctx = {
    source: 's',
    receivedAt: Date.now(),
    sentAt: undefined,
    ip: '198.51.100.77',
    userAgent: undefined,
    scope: 'all' as const,
  };
  const asked: string[] = [];
  const geo = {
    lookup: (ip: string) => {
      asked.push(ip);
      return { country_code: 'FR', city_name: 'Paris', postal_code: '75001', latitude: 48.8, longitude: 2.3 };
    },
  } as unknown as GeoLookup;

  it('stores no city, postal code or coordinates unless GEO_FINE, from the event or the IP', () => {
    if (!event.ok) throw new Error('fixture invalid');
    const coarse = new Enricher({ anonymizeIp: true, geo, geoAddress: 'full', fineGeo: false });
    const given = coarse.activity(event.value, ctx);
    expect([given.city_name, given.postal_code, given.latitude, given.longitude]).toEqual([
      null,
      null,
      null,
      null,
    ]);
    const bare = validateEvent({ user_id: 'u', activity: 'a' }, { receivedAt: Date.now() }, LIMITS);
    if (!bare.ok) throw new Error('fixture invalid');
    const fromIp = coarse.activity(bare.value, ctx);
    expect(fromIp.country_code).toBe('FR');
    expect([fromIp.city_name, fromIp.postal_code, fromIp.latitude, fromIp.longitude]).toEqual([
      null,
      null,
      null,
      null,
    ]);
    const fine = new Enricher({ anonymizeIp: true, geo, geoAddress: 'full', fineGeo: true });
    expect(fine.activity(bare.value, ctx).city_name).toBe('Paris');
    expect(fine.activity(event.value, ctx).city_name).toBe('Lyon');
  });

  it('asks the geo database about the anonymized address when GEO_LOOKUP_ADDRESS=anonymized', () => {
    const bare = validateEvent({ user_id: 'u', activity: 'a' }, { receivedAt: Date.now() }, LIMITS);
    if (!bare.ok) throw new Error('fixture invalid');
    asked.length = 0;
    new Enricher({ anonymizeIp: true, geo, geoAddress: 'anonymized', fineGeo: false }).activity(
      bare.value,
      ctx,
    );
    new Enricher({ anonymizeIp: true, geo, geoAddress: 'full', fineGeo: false }).activity(bare.value, ctx);
    expect(asked).toEqual(['198.51.100.0', '198.51.100.77']);
  });
});
