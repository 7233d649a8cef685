/**
 * Realistic synthetic activity for the demo: a seeded population whose activity follows a power
 * law (a few users do most of the work, most visit rarely), with weekly and daily seasonality,
 * several features, device kinds, countries and segments, some anonymous visitors, test accounts,
 * and a small share of invalid events that the collector must reject one by one.
 *
 * Pure and deterministic for a seed (no clock, no I/O): main.ts owns time and HTTP.
 */
import type { NativeEvent } from '../../schemas/native-api.ts';
import { DAY_MS } from '../lib/time.ts';

export type DemoEvent = NativeEvent;

/** mulberry32: small, fast, good enough for synthetic data, and reproducible from a seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

type Rand = () => number;

function pick<T>(r: Rand, items: readonly (readonly [T, number])[]): T {
  const total = items.reduce((s, [, w]) => s + w, 0);
  let x = r() * total;
  for (const [item, w] of items) {
    x -= w;
    if (x < 0) return item;
  }
  return (items.at(-1) as readonly [T, number])[0];
}

function uuid(r: Rand): string {
  const hex = Array.from({ length: 32 }, () => Math.floor(r() * 16).toString(16));
  hex[12] = '4';
  hex[16] = ((Math.floor(r() * 4) & 0x3) | 0x8).toString(16);
  const h = hex.join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

interface Place {
  readonly country_code: string;
  readonly region_code: string;
  readonly city: string;
  readonly timezone: string;
}

const PLACES: readonly (readonly [Place, number])[] = [
  [{ country_code: 'US', region_code: 'CA', city: 'San Francisco', timezone: 'America/Los_Angeles' }, 14],
  [{ country_code: 'US', region_code: 'NY', city: 'New York', timezone: 'America/New_York' }, 12],
  [{ country_code: 'US', region_code: 'TX', city: 'Austin', timezone: 'America/Chicago' }, 6],
  [{ country_code: 'GB', region_code: 'ENG', city: 'London', timezone: 'Europe/London' }, 9],
  [{ country_code: 'DE', region_code: 'BE', city: 'Berlin', timezone: 'Europe/Berlin' }, 8],
  [{ country_code: 'DE', region_code: 'BY', city: 'Munich', timezone: 'Europe/Berlin' }, 4],
  [{ country_code: 'FR', region_code: 'IDF', city: 'Paris', timezone: 'Europe/Paris' }, 6],
  [{ country_code: 'IN', region_code: 'KA', city: 'Bengaluru', timezone: 'Asia/Kolkata' }, 10],
  [{ country_code: 'BR', region_code: 'SP', city: 'São Paulo', timezone: 'America/Sao_Paulo' }, 7],
  [{ country_code: 'JP', region_code: '13', city: 'Tokyo', timezone: 'Asia/Tokyo' }, 6],
  [{ country_code: 'AU', region_code: 'NSW', city: 'Sydney', timezone: 'Australia/Sydney' }, 4],
  [{ country_code: 'NG', region_code: 'LA', city: 'Lagos', timezone: 'Africa/Lagos' }, 3],
  [{ country_code: 'CA', region_code: 'ON', city: 'Toronto', timezone: 'America/Toronto' }, 5],
];

interface DeviceProfile {
  readonly type: string;
  readonly platform: string;
  readonly os_versions: readonly string[];
  readonly browser_name?: string;
  readonly browser_versions?: readonly string[];
}

const DEVICES: readonly (readonly [DeviceProfile, number])[] = [
  [
    {
      type: 'desktop',
      platform: 'web',
      os_versions: ['Windows 11', 'macOS 14', 'Ubuntu 24.04'],
      browser_name: 'Chrome',
      browser_versions: ['128', '129', '130'],
    },
    34,
  ],
  [
    {
      type: 'desktop',
      platform: 'web',
      os_versions: ['macOS 14', 'Windows 10'],
      browser_name: 'Firefox',
      browser_versions: ['130', '131'],
    },
    8,
  ],
  [
    {
      type: 'desktop',
      platform: 'web',
      os_versions: ['macOS 14', 'macOS 15'],
      browser_name: 'Safari',
      browser_versions: ['17.6', '18.0'],
    },
    8,
  ],
  [{ type: 'mobile', platform: 'ios', os_versions: ['17.6', '18.0', '18.1'] }, 22],
  [{ type: 'mobile', platform: 'android', os_versions: ['13', '14', '15'] }, 20],
  [{ type: 'tablet', platform: 'ios', os_versions: ['17.6', '18.0'] }, 5],
  [{ type: 'desktop', platform: 'macos', os_versions: ['14.6', '15.0'] }, 3],
];

const APP_VERSIONS: readonly (readonly [string, number])[] = [
  ['3.2.0', 8],
  ['3.1.4', 5],
  ['3.1.0', 2],
  ['2.9.7', 1],
];

const SEGMENTS: readonly (readonly [{ segment: string; status: string }, number])[] = [
  [{ segment: 'free', status: 'active' }, 55],
  [{ segment: 'trial', status: 'trial' }, 15],
  [{ segment: 'pro', status: 'active' }, 22],
  [{ segment: 'enterprise', status: 'active' }, 8],
];

/** '' = not recorded: the field is left out, as an app without that data would. */
const GENDERS: readonly (readonly [string, number])[] = [
  ['female', 46],
  ['male', 46],
  ['non-binary', 3],
  ['', 5],
];

/** Feature -> (activity, weight): what people do where. */
const FEATURES: readonly (readonly [
  { feature: string; activities: readonly (readonly [string, number])[] },
  number,
])[] = [
  [
    {
      feature: 'dashboard',
      activities: [
        ['view', 10],
        ['filter', 3],
      ],
    },
    30,
  ],
  [
    {
      feature: 'search',
      activities: [
        ['search', 10],
        ['click_result', 6],
      ],
    },
    22,
  ],
  [
    {
      feature: 'reports',
      activities: [
        ['view', 6],
        ['create', 2],
        ['share', 1],
      ],
    },
    14,
  ],
  [
    {
      feature: 'export',
      activities: [
        ['export_csv', 3],
        ['export_pdf', 1],
      ],
    },
    5,
  ],
  [
    {
      feature: 'chat',
      activities: [
        ['send_message', 8],
        ['view', 4],
      ],
    },
    12,
  ],
  [{ feature: 'settings', activities: [['update', 1]] }, 4],
  [
    {
      feature: 'billing',
      activities: [
        ['view', 3],
        ['purchase', 1],
      ],
    },
    3,
  ],
  [
    {
      feature: 'onboarding',
      activities: [
        ['step_complete', 5],
        ['skip', 1],
      ],
    },
    4,
  ],
];

export interface DemoUser {
  readonly userId: string | undefined;
  readonly anonymousId: string;
  /** Relative activity level, power-law distributed; mean about 1. */
  readonly weight: number;
  readonly place: Place;
  readonly device: {
    readonly id: string;
    readonly type: string;
    readonly platform: string;
    readonly os_version: string;
    readonly app_version?: string;
    readonly browser_name?: string;
    readonly browser_version?: string;
  };
  readonly profile?: {
    readonly registration_date: string;
    readonly birth_date: string;
    readonly gender?: string;
    readonly segment: string;
    readonly account_status: string;
    readonly is_test_account: boolean;
  };
}

export interface PopulationOptions {
  readonly seed: number;
  readonly users: number;
  /** Share of visitors who never sign in (anonymous_id only). */
  readonly anonymousShare: number;
  readonly testAccountShare: number;
  /** Day number (days since the epoch) of the demo's "today"; registrations lie before it. */
  readonly today: number;
}

function isoDate(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

export function population(o: PopulationOptions): DemoUser[] {
  const r = rng(o.seed);
  return Array.from({ length: o.users }, (_, i) => {
    // Pareto with alpha 1.5, scaled to mean ~1: most users are light, a long tail is heavy.
    const weight = Math.min(40, 1 / (1 - r()) ** (1 / 1.5) / 3);
    const place = pick(r, PLACES);
    const d = pick(r, DEVICES);
    const osVersion = d.os_versions[Math.floor(r() * d.os_versions.length)] ?? '';
    const anonymous = r() < o.anonymousShare;
    const seg = pick(r, SEGMENTS);
    const age = 16 + Math.floor(r() ** 1.6 * 55);
    const gender = pick(r, GENDERS);
    const device = {
      id: `dev-${o.seed}-${i}`,
      type: d.type,
      platform: d.platform,
      os_version: osVersion,
      ...(d.platform === 'web' ? {} : { app_version: pick(r, APP_VERSIONS) }),
      ...(d.browser_name === undefined
        ? {}
        : {
            browser_name: d.browser_name,
            browser_version: d.browser_versions?.[Math.floor(r() * d.browser_versions.length)] ?? '',
          }),
    };
    return {
      userId: anonymous ? undefined : `demo-user-${o.seed}-${i}`,
      anonymousId: `anon-${o.seed}-${i}`,
      weight,
      place,
      device,
      ...(anonymous
        ? {}
        : {
            profile: {
              registration_date: `${isoDate(o.today - 1 - Math.floor(r() * 700))}T00:00:00Z`,
              birth_date: isoDate(o.today - Math.floor(age * 365.25) - Math.floor(r() * 365)),
              ...(gender === '' ? {} : { gender }),
              segment: seg.segment,
              account_status: seg.status,
              is_test_account: r() < o.testAccountShare,
            },
          }),
    };
  });
}

/** Relative traffic by UTC weekday (0 = Sunday): weekends are quieter. */
const WEEKDAY_FACTOR = [0.5, 1.0, 1.05, 1.05, 1.0, 0.9, 0.55];

export function weekdayFactor(day: number): number {
  // Day 0 (1970-01-01) was a Thursday.
  return WEEKDAY_FACTOR[(day + 4) % 7] ?? 1;
}

/** A local hour of activity: a working-day curve peaking late morning and early evening. */
function localHour(r: Rand): number {
  return pick(r, [
    [7, 2],
    [8, 4],
    [9, 6],
    [10, 8],
    [11, 8],
    [12, 6],
    [13, 6],
    [14, 7],
    [15, 7],
    [16, 6],
    [17, 5],
    [18, 5],
    [19, 6],
    [20, 6],
    [21, 4],
    [22, 2],
    [23, 1],
    [0, 1],
    [6, 1],
  ] as const);
}

/** Offset of `tz` from UTC in ms at `atMs`. */
function zoneOffsetMs(tz: string, atMs: number): number {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: tz,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  }).formatToParts(new Date(atMs));
  const get = (t: string): number => Number(parts.find((p) => p.type === t)?.value ?? 0);
  const asUtc = Date.UTC(
    get('year'),
    get('month') - 1,
    get('day'),
    get('hour'),
    get('minute'),
    get('second'),
  );
  return asUtc - Math.floor(atMs / 1000) * 1000;
}

function event(r: Rand, u: DemoUser, atMs: number, sessionId: number): DemoEvent {
  const f = pick(r, FEATURES);
  const { country_code, region_code, city, timezone } = u.place;
  return {
    event_id: uuid(r),
    ...(u.userId === undefined ? {} : { user_id: u.userId }),
    anonymous_id: u.anonymousId,
    activity: pick(r, f.activities),
    feature: f.feature,
    timestamp: new Date(atMs).toISOString(),
    session_id: sessionId,
    duration_seconds: Math.floor(r() * 300),
    device: { ...u.device },
    geo: { country_code, region_code, city, timezone },
    ...(u.profile === undefined ? {} : { user: { ...u.profile } }),
    properties: { demo: true, plan: u.profile?.segment ?? 'anonymous' },
  };
}

/**
 * One user's sessions on `day` (days since the epoch): whether the user comes at all depends on
 * their weight and the weekday; a session is a burst of events within a few minutes. Events in the
 * future of `nowMs` are not produced.
 */
export function dayOfActivity(r: Rand, u: DemoUser, day: number, nowMs: number): DemoEvent[] {
  const pActive = Math.min(0.92, 0.18 * u.weight * weekdayFactor(day));
  if (r() >= pActive) return [];
  const sessions = 1 + Math.floor(r() * Math.min(4, u.weight));
  const out: DemoEvent[] = [];
  for (let s = 0; s < sessions; s++) {
    const localMs = day * DAY_MS + localHour(r) * 3_600_000 + Math.floor(r() * 3_600_000);
    const start = localMs - zoneOffsetMs(u.place.timezone, localMs);
    const events = 1 + Math.floor(r() * 6);
    for (let e = 0; e < events; e++) {
      const at = start + e * Math.floor(r() * 90_000);
      if (at <= nowMs) out.push(event(r, u, at, start));
    }
  }
  return out;
}

/** A live event "now" from a user picked in proportion to their weight. */
export function liveEvent(
  r: Rand,
  users: readonly DemoUser[],
  cumulative: readonly number[],
  nowMs: number,
): DemoEvent {
  const x = r() * (cumulative.at(-1) ?? 0);
  let lo = 0;
  let hi = cumulative.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((cumulative[mid] ?? 0) < x) lo = mid + 1;
    else hi = mid;
  }
  const u = users[lo] as DemoUser;
  // Sessions of about half an hour, so a live user's events share a session id.
  return event(r, u, nowMs, Math.floor(nowMs / 1_800_000) * 1_800_000);
}

export function cumulativeWeights(users: readonly DemoUser[]): number[] {
  let s = 0;
  return users.map((u) => {
    s += u.weight;
    return s;
  });
}

/**
 * Invalid on purpose, one way each, so the collector's per-event rejections show in its metrics
 * and the valid events beside them still count.
 */
export function badEvent(r: Rand, nowMs: number): Record<string, unknown> {
  const kind = Math.floor(r() * 5);
  const base = {
    event_id: uuid(r),
    activity: 'view',
    feature: 'dashboard',
    timestamp: new Date(nowMs).toISOString(),
  };
  switch (kind) {
    case 0: // neither user_id nor anonymous_id
      return base;
    case 1: // two days in the future
      return { ...base, user_id: 'demo-bad', timestamp: new Date(nowMs + 2 * DAY_MS).toISOString() };
    case 2: // wrong type
      return { ...base, user_id: 'demo-bad', duration_seconds: 'long' };
    case 3: // not a timestamp
      return { ...base, user_id: 'demo-bad', timestamp: 'yesterday-ish' };
    default: // bad country code
      return { ...base, user_id: 'demo-bad', geo: { country_code: 'Atlantis' } };
  }
}
