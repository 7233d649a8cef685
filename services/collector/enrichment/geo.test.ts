import { describe, expect, it } from 'vitest';
import { geoFiles, openGeo } from './geo.ts';

describe('geo databases', () => {
  it('the country database (the default) knows countries of both IP versions and nothing finer', async () => {
    const geo = await openGeo(geoFiles('country'));
    expect(geo.lookup('8.8.8.8')).toEqual({ country_code: 'US' });
    expect(geo.lookup('2a00:1450:4001:80b::200e')?.country_code).toBe('DE');
    expect(geo.lookup('10.0.0.1')).toBeUndefined();
    expect(geo.lookup('not an ip')).toBeUndefined();
  });

  it('the city database adds region, city and coordinates', async () => {
    const r = (await openGeo(geoFiles('city'))).lookup('8.8.8.8');
    expect(r?.country_code).toBe('US');
    expect(r?.region_name).toEqual(expect.any(String));
    expect([typeof r?.city_name, typeof r?.latitude]).toEqual(['string', 'number']);
  });
});
