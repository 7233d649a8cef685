/**
 * Seeded random data set for the data-model tests, and the exact answers computed from it in
 * plain TypeScript (the "truth" the rollups are compared with). Not a test file itself.
 */
import {
  type ActivityRecord,
  type IdentifyRecord,
  type IngestActivityRow,
  toIngestActivityRow,
} from '../../services/consumer/ingest-row.ts';
import { rng } from '../../services/demo/generator.ts';
import { DAY_MS } from '../../services/lib/time.ts';
import type { Dimension } from '../../services/query/params.ts';

export { rng };

const FEATURES = [
  ['search', 'discovery'],
  ['feed', 'discovery'],
  ['checkout', 'commerce'],
  ['cart', 'commerce'],
  ['chat', 'social'],
  ['profile', 'social'],
] as const;
const ACTIVITIES = ['view', 'click', 'submit', 'share'] as const;
const GEOS = [
  ['EU', 'DE', 'Germany', ['DE-BE', 'DE-BY']],
  ['EU', 'FR', 'France', ['FR-IDF', 'FR-ARA']],
  ['NA', 'US', 'United States', ['US-CA', 'US-NY', 'US-TX']],
  ['NA', 'CA', 'Canada', ['CA-ON']],
  ['AS', 'IN', 'India', ['IN-KA', 'IN-MH']],
  ['AS', 'JP', 'Japan', ['JP-13']],
  ['SA', 'BR', 'Brazil', ['BR-SP']],
] as const;
const DEVICES = [
  ['desktop', 'web'],
  ['mobile', 'ios'],
  ['mobile', 'android'],
  ['tablet', 'ios'],
] as const;
const SEGMENTS = ['free', 'pro', 'enterprise', null] as const;
const GENDERS = ['female', 'male', 'nonbinary', null] as const;
const VERSIONS = ['1.0.0', '1.1.0', '2.0.0'] as const;

export interface Dataset {
  readonly rows: IngestActivityRow[];
  readonly identifies: IdentifyRecord[];
  readonly firstDay: number;
  readonly lastDay: number;
  readonly countryNames: ReadonlyMap<string, string>;
}

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)] as T;
}

/**
 * `users` users over `days` days ending at `lastDay` (UTC midnight ms). 10% start anonymous and
 * identify on a random day: their earlier events count as the anonymous id, later ones (carrying
 * only the anonymous id) as the user, resolved as the consumer does. 5% test accounts, 2% bot events.
 */
export function generate(seed: number, users: number, days: number, lastDay: number): Dataset {
  const r = rng(seed);
  const firstDay = lastDay - (days - 1) * DAY_MS;
  const rows: IngestActivityRow[] = [];
  const identifies: IdentifyRecord[] = [];
  let n = 0;
  for (let u = 0; u < users; u++) {
    const userId = `user-${seed}-${u}`;
    const anonymousId = `anon-${seed}-${u}`;
    const identifyDay = r() < 0.1 ? firstDay + Math.floor(r() * days) * DAY_MS : undefined;
    const [continent, country, , regions] = pick(r, GEOS);
    const region = pick(r, regions);
    const [deviceType, platform] = pick(r, DEVICES);
    const segment = pick(r, SEGMENTS);
    const gender = pick(r, GENDERS);
    const birth =
      r() < 0.15
        ? null
        : Math.floor((Date.UTC(1950, 0, 1) + r() * (Date.UTC(2010, 0, 1) - Date.UTC(1950, 0, 1))) / DAY_MS);
    const isTest = r() < 0.05;
    const appVersion = pick(r, VERSIONS);
    const activity = 0.05 + r() * 0.5;
    const start = firstDay + Math.floor(r() * days * 0.7) * DAY_MS;
    if (identifyDay !== undefined) {
      identifies.push(identifyRecord(`id-${seed}-${u}`, userId, anonymousId, identifyDay));
    }
    for (let day = start; day <= lastDay; day += DAY_MS) {
      if (r() > activity) continue;
      const events = 1 + Math.floor(r() * 3);
      for (let e = 0; e < events; e++) {
        const ts = day + Math.floor(r() * DAY_MS);
        const [feature, category] = pick(r, FEATURES);
        const known = identifyDay === undefined || ts >= identifyDay;
        const rec: ActivityRecord = {
          event_id: `ev-${seed}-${n++}`,
          source: 'test',
          received_at: ts + 500,
          sent_at: ts + 400,
          original_timestamp: ts,
          activity_timestamp: ts,
          user_id: identifyDay === undefined ? userId : null,
          anonymous_id: identifyDay === undefined ? null : anonymousId,
          session_id: Math.floor(ts / 1_800_000),
          duration_seconds: Math.floor(r() * 300),
          activity_name: pick(r, ACTIVITIES),
          activity_category: 'engagement',
          is_conversion_event: false,
          activity_weight: 1,
          feature_name: feature,
          feature_category: category,
          is_core_feature: true,
          feature_release_date: null,
          feature_owner: 'team',
          device_id: `dev-${u}`,
          device_type: deviceType,
          platform,
          os_version: null,
          app_version: appVersion,
          browser_name: null,
          browser_version: null,
          continent_code: continent,
          country_code: country,
          country_name: null,
          region_code: region,
          region_name: null,
          city_name: null,
          postal_code: null,
          latitude: null,
          longitude: null,
          timezone: null,
          registration_date: null,
          birth_date: birth,
          gender,
          segment_name: segment,
          segment_description: null,
          segment_category: null,
          account_status: 'active',
          is_test_account: isTest,
          user_attributes: null,
          client_ip: null,
          user_agent: null,
          is_bot: r() < 0.02,
          activity_metadata: '{}',
          details: r() < 0.3 ? [{ detail_type: 'query', detail_payload: '{"q":"x"}' }] : [],
        };
        rows.push(
          toIngestActivityRow(
            { ...rec, country_name: countryName(country) },
            { resolvedUserId: known && identifyDay !== undefined ? userId : null },
          ),
        );
      }
    }
  }
  // Shuffled: batches mix days, so every batch carries late events for past days.
  for (let i = rows.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [rows[i], rows[j]] = [rows[j] as IngestActivityRow, rows[i] as IngestActivityRow];
  }
  return { rows, identifies, firstDay, lastDay, countryNames: new Map(GEOS.map(([, c, name]) => [c, name])) };
}

function countryName(code: string): string {
  return GEOS.find(([, c]) => c === code)?.[2] ?? '';
}

function identifyRecord(eventId: string, userId: string, anonymousId: string, at: number): IdentifyRecord {
  return {
    event_id: eventId,
    source: 'test',
    received_at: at,
    sent_at: at,
    identified_at: at,
    kind: 'identify',
    user_id: userId,
    anonymous_id: anonymousId,
    previous_id: null,
    registration_date: at,
    birth_date: null,
    gender: null,
    segment_name: null,
    segment_description: null,
    segment_category: null,
    account_status: 'active',
    is_test_account: false,
    country_code: null,
    user_attributes: null,
    client_ip: null,
    user_agent: null,
  };
}

/** The row's value of an API dimension, normalised like the views ('' = unknown). */
export function dimValue(row: IngestActivityRow, d: Dimension): string {
  const v = {
    feature: row.feature_name,
    feature_category: row.feature_category,
    activity_type: row.activity_name,
    device_type: row.device_type,
    platform: row.platform,
    app_version: row.app_version,
    continent: row.continent_code,
    country: row.country_code,
    region: row.region_code,
    segment: row.segment_name,
    gender: row.gender,
    age_band: row.age_band,
  }[d];
  return v ?? '';
}

const dayFormatters = new Map<string, Intl.DateTimeFormat>();
export function localDay(ms: number, tz: string): string {
  let f = dayFormatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' });
    dayFormatters.set(tz, f);
  }
  return f.format(ms);
}

export interface TruthRow {
  day: string;
  group: string;
  dau: number;
  wau: number;
  mau: number;
  new_users: number;
  returning_users: number;
}

const addDays = (day: string, n: number): string =>
  new Date(Date.parse(`${day}T00:00:00Z`) + n * DAY_MS).toISOString().slice(0, 10);
const monday = (day: string): string => addDays(day, -((new Date(`${day}T00:00:00Z`).getUTCDay() + 6) % 7));

/**
 * Exact DAU/WAU/MAU/new/returning per day in [from, to] and group (JSON of the group values), for
 * rolling windows (7 / 30 days ending on the day, the default) or calendar ones (ISO week and
 * month to date). Keyed `day \0 group`; a (day, group) with nobody in any window has no entry.
 */
export function truth(
  rows: readonly IngestActivityRow[],
  q: {
    from: string;
    to: string;
    tz: string;
    filters: Partial<Record<Dimension, readonly string[]>>;
    groupBy: readonly Dimension[];
    includeTest?: boolean;
    includeBots?: boolean;
    window?: 'rolling' | 'calendar';
  },
): Map<string, TruthRow> {
  const days = new Map<string, Map<string, Set<string>>>(); // group -> day -> actors
  const first = new Map<string, number>(); // group \0 actor -> min ts
  for (const row of rows) {
    if (!q.includeTest && row.is_test_account) continue;
    if (!q.includeBots && row.is_bot) continue;
    if (
      !Object.entries(q.filters).every(([d, vs]) => (vs as string[]).includes(dimValue(row, d as Dimension)))
    )
      continue;
    const group = JSON.stringify(q.groupBy.map((g) => dimValue(row, g)));
    const day = localDay(row.activity_timestamp, q.tz);
    const byDay = days.get(group) ?? new Map<string, Set<string>>();
    days.set(group, byDay);
    const set = byDay.get(day) ?? new Set<string>();
    byDay.set(day, set);
    set.add(row.actor_id);
    const k = `${group}\0${row.actor_id}`;
    first.set(k, Math.min(first.get(k) ?? Number.POSITIVE_INFINITY, row.activity_timestamp));
  }
  const newByGroupDay = new Map<string, number>();
  for (const [k, ts] of first) {
    const key = `${k.split('\0')[0]}\0${localDay(ts, q.tz)}`;
    newByGroupDay.set(key, (newByGroupDay.get(key) ?? 0) + 1);
  }
  const calendar = q.window === 'calendar';
  const out = new Map<string, TruthRow>();
  for (const [group, byDay] of days) {
    for (let day = q.from; day <= q.to; day = addDays(day, 1)) {
      const distinct = (start: string): number => {
        const s = new Set<string>();
        for (let d = start; d <= day; d = addDays(d, 1)) for (const a of byDay.get(d) ?? []) s.add(a);
        return s.size;
      };
      const dau = distinct(day);
      const wau = distinct(calendar ? monday(day) : addDays(day, -6));
      const mau = distinct(calendar ? `${day.slice(0, 8)}01` : addDays(day, -29));
      // A calendar week can reach into the previous month, so MAU alone does not decide.
      if (dau + wau + mau === 0) continue;
      const nu = newByGroupDay.get(`${group}\0${day}`) ?? 0;
      out.set(`${day}\0${group}`, { day, group, dau, wau, mau, new_users: nu, returning_users: dau - nu });
    }
  }
  return out;
}
