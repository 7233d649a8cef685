/**
 * Validated input + request context -> the Avro records of schemas/ (UserActivity, UserIdentify).
 * Pure apart from the injected geo lookup; event ids are generated here when the sender gave none.
 */
import { randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import type { ActivityRecord, IdentifyRecord } from '../../../schemas/records.ts';
import type { KeyScope } from '../http/write-keys.ts';
import type { ValidEvent, ValidIdentify, Values } from '../validation/validate.ts';
import { countryInfo } from './countries.ts';
import type { GeoLookup } from './geo.ts';
import { anonymizeIp } from './ip.ts';
import { parseUserAgent, type UserAgentInfo } from './user-agent.ts';

export interface RequestContext {
  readonly source: string;
  readonly receivedAt: number;
  readonly sentAt: number | undefined;
  /** Request-level warnings (an ignored sent time, a cut user agent), repeated on each event. */
  readonly warnings?: readonly string[];
  readonly ip: string | undefined;
  readonly userAgent: string | undefined;
  /** The write key's scope: `track` may send activity events only (http/write-keys.ts). */
  readonly scope: KeyScope;
}

export interface EnrichOptions {
  readonly anonymizeIp: boolean;
  readonly geo: GeoLookup | undefined;
  /** Which address the geo database is asked about: the client's, or its anonymized form. */
  readonly geoAddress: 'full' | 'anonymized';
  /** Keep city, postal code and coordinates (from the event or the IP); else only country level. */
  readonly fineGeo: boolean;
}

const s = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const n = (v: unknown): number | null => (typeof v === 'number' ? v : null);
const b = (v: unknown): boolean | null => (typeof v === 'boolean' ? v : null);
const json = (v: Record<string, unknown>): string | null =>
  Object.keys(v).length === 0 ? null : JSON.stringify(v);

export class Enricher {
  private readonly o: EnrichOptions;
  // User-Agent strings repeat heavily (one per browser build); parsing is the costly part.
  private readonly uaCache = new Map<string, UserAgentInfo>();

  constructor(o: EnrichOptions) {
    this.o = o;
  }

  userAgent(ua: string | undefined): UserAgentInfo | undefined {
    if (ua === undefined || ua === '') return undefined;
    let info = this.uaCache.get(ua);
    if (info === undefined) {
      info = parseUserAgent(ua);
      if (this.uaCache.size >= 10_000) this.uaCache.clear();
      this.uaCache.set(ua, info);
    }
    return info;
  }

  private clientIp(ip: string | undefined): string | null {
    // A relayed IP (Segment's context.ip) is any string a sender wrote: only an address is kept.
    if (ip === undefined || isIP(ip) === 0) return null;
    return this.o.anonymizeIp ? (anonymizeIp(ip) ?? null) : ip;
  }

  activity(e: ValidEvent, ctx: RequestContext): ActivityRecord {
    const ua = this.userAgent(ctx.userAgent);
    const d: Values = Object.keys(e.device).length > 0 || ua === undefined ? e.device : fromUserAgent(ua);
    const g = this.geo(e.geo, ctx.ip);
    const u = e.user;
    const metadata = {
      ...e.properties,
      ...(e.session_key === undefined ? {} : { _session_id: e.session_key }),
      ...(Object.keys(e.unknown).length === 0 ? {} : { _unknown: e.unknown }),
    };
    return {
      event_id: e.event_id ?? randomUUID(),
      source: ctx.source,
      received_at: ctx.receivedAt,
      sent_at: ctx.sentAt ?? null,
      original_timestamp: e.original_timestamp ?? null,
      activity_timestamp: e.activity_timestamp,
      user_id: e.user_id ?? null,
      anonymous_id: e.anonymous_id ?? null,
      session_id: e.session_id ?? null,
      duration_seconds: e.duration_seconds ?? null,
      activity_name: e.activity,
      // Dimension attributes of activities and features are owned by the dimension tables, not
      // by senders; the collector leaves them null.
      activity_category: null,
      is_conversion_event: null,
      activity_weight: null,
      feature_name: e.feature,
      feature_category: null,
      is_core_feature: null,
      feature_release_date: null,
      feature_owner: null,
      device_id: s(d.id),
      device_type: s(d.type),
      platform: s(d.platform),
      os_version: s(d.os_version),
      app_version: s(d.app_version),
      browser_name: s(d.browser_name),
      browser_version: s(d.browser_version),
      continent_code: g.continent_code,
      country_code: g.country_code,
      country_name: g.country_name,
      region_code: g.region_code,
      region_name: g.region_name,
      city_name: g.city_name,
      postal_code: g.postal_code,
      latitude: g.latitude,
      longitude: g.longitude,
      timezone: g.timezone,
      registration_date: n(u.registration_date),
      birth_date: n(u.birth_date),
      gender: s(u.gender),
      segment_name: s(u.segment),
      segment_description: null,
      segment_category: null,
      account_status: s(u.account_status),
      is_test_account: u.is_test_account === true,
      user_attributes: u.attributes === undefined ? null : JSON.stringify(u.attributes),
      client_ip: this.clientIp(ctx.ip),
      user_agent: ctx.userAgent ?? null,
      is_bot: ua?.is_bot ?? false,
      activity_metadata: JSON.stringify(metadata),
      details: e.details.map((x) => ({ detail_type: x.type, detail_payload: JSON.stringify(x.payload) })),
    };
  }

  identify(
    i: ValidIdentify,
    ctx: RequestContext,
    link: { kind: 'identify' } | { kind: 'alias'; previousId: string } = { kind: 'identify' },
  ): IdentifyRecord {
    const t = i.traits;
    return {
      event_id: i.event_id ?? randomUUID(),
      source: ctx.source,
      received_at: ctx.receivedAt,
      sent_at: ctx.sentAt ?? null,
      identified_at: i.identified_at,
      kind: link.kind,
      user_id: i.user_id,
      anonymous_id: i.anonymous_id ?? null,
      previous_id: link.kind === 'alias' ? link.previousId : null,
      registration_date: n(t.registration_date),
      birth_date: n(t.birth_date),
      gender: s(t.gender),
      segment_name: s(t.segment),
      segment_description: s(t.segment_description),
      segment_category: s(t.segment_category),
      account_status: s(t.account_status),
      is_test_account: b(t.is_test_account),
      country_code:
        s(t.country_code) ??
        (ctx.ip === undefined ? null : (this.o.geo?.lookup(ctx.ip)?.country_code ?? null)),
      user_attributes: json(i.attributes),
      client_ip: this.clientIp(ctx.ip),
      user_agent: ctx.userAgent ?? null,
    };
  }

  private geo(given: Values, ip: string | undefined) {
    const address = ip !== undefined && this.o.geoAddress === 'anonymized' ? anonymizeIp(ip) : ip;
    const fromIp =
      Object.keys(given).length === 0 && address !== undefined ? this.o.geo?.lookup(address) : undefined;
    const fine = this.o.fineGeo;
    const country = s(given.country_code) ?? fromIp?.country_code ?? null;
    const info = country === null ? undefined : countryInfo(country);
    return {
      continent_code: info?.continentCode ?? null,
      country_code: country,
      country_name: info?.countryName ?? null,
      region_code: s(given.region_code),
      region_name: fromIp?.region_name ?? null,
      // A place a person can be found at: stored only when the operator enabled it (GEO_FINE).
      city_name: fine ? (s(given.city) ?? fromIp?.city_name ?? null) : null,
      postal_code: fine ? (s(given.postal_code) ?? fromIp?.postal_code ?? null) : null,
      latitude: fine ? (n(given.latitude) ?? fromIp?.latitude ?? null) : null,
      longitude: fine ? (n(given.longitude) ?? fromIp?.longitude ?? null) : null,
      timezone: s(given.timezone) ?? fromIp?.timezone ?? null,
    };
  }
}

function fromUserAgent(ua: UserAgentInfo): Values {
  return {
    type: ua.device_type,
    platform: ua.platform,
    os_version: ua.os_version,
    browser_name: ua.browser_name,
    browser_version: ua.browser_version,
  };
}
