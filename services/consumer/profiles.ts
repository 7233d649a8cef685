/**
 * Identity and profile context for activity rows, so a fact carries the right actor and the
 * profile attributes (segment, gender, birth date -> age band, country, registration date, test
 * flag) even when the event itself lacks them, and a restarted consumer (empty cache) still gets
 * them right: a cache miss is looked up in ClickHouse (identity_map, dim_users) once per batch.
 *
 * Only ids that may HAVE a link or a profile are looked up: with a million users nearly every id
 * of a batch is new and has neither, and asking ClickHouse about each made the consumer several
 * times slower than the collector. Two compact sets (keyset.ts, no false negatives) hold every id
 * that may: read in full from ClickHouse at start and after a rebalance, kept current by the
 * identifies and attribute-carrying activities this consumer writes, and by what other members
 * wrote (identify_log), read at most every `refreshIntervalMs` before a batch's look-ups. So
 * another member's identify is applied to batches prefetched from `refreshIntervalMs` after
 * ClickHouse acknowledged it (the refresh also drops the cached profiles of the ids it names,
 * found or not). An id outside the sets is "no link, no profile" without a query. A profile made of a
 * geo country only (migration 0009's version-0 rows) is not a profile: it fills nothing.
 * The profile set also keeps, per actor, which attributes its profile may hold (attribute bits): an
 * event that carries every one of them has nothing to fill, so it needs no look-up either. SDKs
 * that send the user's traits with every event (bench scenario 7) therefore look up nobody, where
 * each cache miss (more active users than CACHE_MAX_ENTRIES) used to cost a dim_users read.
 *
 * Precedence: a value the event carries wins; the profile only fills what the event lacks
 * (is_test_account is a boolean with default false in the contract, so true from either side wins).
 * A profile is, per attribute, the newest non-null value seen: an identify's traits are merged over
 * the profile known so far (cache, else dim_users), so identify({gender}) after identify({segment})
 * keeps the segment, and the identify row written to dim_users carries the merged profile.
 * Identity: an anonymous id linked to a user (identify or alias) is replaced by that user id; the
 * earliest link wins, matching the data model's identity_map look-up, so an id never moves between
 * users once its events were counted.
 * Re-delivery keeps the actor: a message written but not committed (kill -9, a rebalance) comes
 * again, and if its anonymous id was linked in between, resolving it now would write a second fact
 * row under the user id. The hourly uniq rollups cannot forget a user once merged, so the sketch
 * path would count both (dau 2 for one event). So the events the pipeline says may have been written
 * before (pipeline.ts: after an assignment, until a partition is past what an earlier owner could
 * have written) and that would now be re-keyed are first looked up in the facts: written already,
 * they keep the actor they were written under. Only such events are looked up (no user id, an
 * anonymous id linked now).
 *
 * is_first_daily_activity (best effort, by definition): 1 when this consumer instance has not
 * written another event of the same actor on the same UTC day (of activity_timestamp) since it
 * started, as far as its bounded cache remembers. It remembers the latest day per actor (one
 * number, not one entry per actor-day: half the look-ups and memory), so an event of an earlier
 * day than one already seen (a late event) is marked 1 too. Under at-least-once delivery a
 * re-delivered event, a restart, a rebalance or an eviction can also mark a second event of a day
 * as first, and an event that arrives after a later one of the same day is not re-evaluated; so
 * per actor-day there is at least one 1, usually exactly one. No metric depends on it: active users are counted from
 * distinct actors, never from this flag.
 */

import { Lru } from '../lib/lru.ts';
import { DAY_MS } from '../lib/time.ts';
import { type ActivityRecord, actorId, type IdentifyRecord } from './ingest-row.ts';
import { KeySet } from './keyset.ts';

/** The profile attributes an activity row can inherit, as the identify record carries them. */
export const PROFILE_FIELDS = [
  'registration_date',
  'birth_date',
  'gender',
  'segment_name',
  'segment_description',
  'segment_category',
  'account_status',
  'is_test_account',
  'country_code',
  'user_attributes',
] as const satisfies readonly (keyof IdentifyRecord)[];

/** Values in Avro form (millis, epoch days), typed by the identify record so the two cannot drift. */
export type Profile = Pick<IdentifyRecord, (typeof PROFILE_FIELDS)[number]>;

/** Every attribute bit: PROFILE_FIELDS[i] is bit i. */
export const ALL_ATTRIBUTES = (1 << PROFILE_FIELDS.length) - 1;

/**
 * The attributes `r` holds, as bits of PROFILE_FIELDS: a non-null value (an empty string counts,
 * as in ClickHouse's isNotNull), and is_test_account when true (false is what a profile adds nothing
 * to). For an event: what it carries itself, so a profile has nothing to fill there.
 */
export function attributeBits(r: Readonly<Record<(typeof PROFILE_FIELDS)[number], unknown>>): number {
  let bits = 0;
  for (let i = 0; i < PROFILE_FIELDS.length; i += 1) {
    const v = r[PROFILE_FIELDS[i] as (typeof PROFILE_FIELDS)[number]];
    if (v !== null && v !== undefined && v !== false) bits |= 1 << i;
  }
  return bits;
}

/** Receives the ids that may have a profile or a link (streamed: a million at start). */
export interface KeySink {
  /**
   * A dim_users actor id (user id or `anon:<id>`) that may have profile attributes: `bits` says
   * which (attributeBits; ALL_ATTRIBUTES when unknown).
   */
  readonly profile: (actorId: string, bits: number) => void;
  /** An anonymous or earlier id that may be linked to a user. */
  readonly link: (id: string) => void;
  /** A deleted user or linked id (services/query/delete-user.ts): nothing cached about it stays. */
  readonly forget: (id: string) => void;
}

/** An event that may have been written before this member was assigned its partition. */
export interface WrittenProbe {
  readonly eventId: string;
  /** Its activity_timestamp (ms): the facts' day of it, which bounds the look-up. */
  readonly activityTimestamp: number;
}

/** What prefetch found out about a batch's possible re-deliveries. */
export interface RedeliveryCheck {
  /** The events looked up in the facts: possible re-deliveries the links would re-key now. */
  readonly probed: readonly ActivityRecord[];
  /** Event ids among them already in the facts. */
  readonly found: ReadonlySet<string>;
  /** How many of those keep an actor other than the one the links give now. */
  readonly kept: number;
}

/** Where a cache miss is looked up (ClickHouse in production, a map in unit tests). */
export interface ProfileLookup {
  /** Every id that may have a profile or a link; resolves with the cursor for knownSince. */
  readonly knownAll: (sink: KeySink) => Promise<number>;
  /** Ids identified or linked since `cursor` (any member); resolves with the next cursor. */
  readonly knownSince: (cursor: number, sink: KeySink) => Promise<number>;
  /** anonymous or earlier id -> the user id it is linked to (earliest link). */
  readonly identities: (ids: readonly string[]) => Promise<ReadonlyMap<string, string>>;
  /** actor id (dim_users.user_id: a user id or `anon:<anonymous id>`) -> newest profile. */
  readonly profiles: (actorIds: readonly string[]) => Promise<ReadonlyMap<string, Profile>>;
  /** event id -> the actor it was first written under, for those of `events` in the facts. */
  readonly writtenActors: (events: readonly WrittenProbe[]) => Promise<ReadonlyMap<string, string>>;
}

export interface UserContextOptions {
  readonly lookup: ProfileLookup;
  /** Entries per cache (identities, profiles, actor-days). */
  readonly maxEntries: number;
  /**
   * Estimated bytes per cache (entryBytes): a profile's traits (user_attributes) can be as long as
   * an event, so the entry cap alone does not bound a cache's memory.
   */
  readonly maxBytes: number;
  /**
   * How long "not found" is trusted. Identify events of a user may be handled by another member
   * of the group (different message key, different partition), so a negative answer must expire.
   */
  readonly negativeTtlMs: number;
  /** How often, at most, the ids other members identified or linked are read (before a batch). */
  readonly refreshIntervalMs: number;
  readonly now?: () => number;
}

export interface Enriched {
  /** The activity with the profile attributes it lacked filled in. */
  readonly record: ActivityRecord;
  /** The user id an anonymous event is linked to, when the event has no user_id. */
  readonly resolvedUserId: string | null;
  readonly isFirstDailyActivity: boolean;
}

function str(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}

/** Map slot, entry object and key string header of one cache entry. */
const ENTRY_BYTES = 118;
/** A string's header; its characters count a byte each (V8's one-byte strings: ids are ASCII). */
const STRING_BYTES = 16;
/** A profile object with its ten fields. */
const PROFILE_BYTES = 100;
const stringBytes = (s: string | null): number => (s === null ? 0 : STRING_BYTES + s.length);

/**
 * Estimated heap bytes of one entry of each cache, for their byte budget. Against the heap deltas
 * of bench/measure-caches.ts (18-character user ids, 36-character anonymous ids, profiles with every
 * attribute set): actor-day 136 estimated / 135 measured, identity 188 / 224, profile about 460 / 440.
 */
export const entryBytes = {
  actorDay: (actor: string): number => ENTRY_BYTES + actor.length,
  identity: (id: string, user: string | null): number => ENTRY_BYTES + id.length + stringBytes(user),
  profile: (actor: string, p: Profile | null): number => {
    let bytes = ENTRY_BYTES + actor.length;
    if (p === null) return bytes;
    bytes += PROFILE_BYTES;
    for (const f of PROFILE_FIELDS) {
      const v = p[f];
      if (typeof v === 'string') bytes += stringBytes(v);
    }
    return bytes;
  },
};

/** Per attribute, `next`'s value when it has one, else `previous`'s (null: nothing known before). */
export function mergeProfile(previous: Profile | null, next: Profile): Profile {
  if (previous === null) return next;
  const merged: Record<string, unknown> = {};
  for (const f of PROFILE_FIELDS) merged[f] = next[f] ?? previous[f];
  return merged as unknown as Profile;
}

/**
 * Whether the dim_users row written for this activity carries attributes (migration 0009: version >
 * 0), i.e. whether its actor has a profile from now on. Null tests as ClickHouse's isNull: an empty
 * string counts, erring towards a look-up.
 */
function carriesProfile(r: ActivityRecord): boolean {
  return (
    r.is_test_account ||
    PROFILE_FIELDS.some((f) => f !== 'country_code' && f !== 'is_test_account' && r[f] != null)
  );
}

/** A look-up answer from rows that carry no attribute (migration 0009's version-0 rows) only. */
function isEmpty(p: Profile): boolean {
  return PROFILE_FIELDS.every((f) => p[f] === null || (f === 'is_test_account' && p[f] === false));
}

function profileFromIdentify(r: IdentifyRecord): Profile {
  return {
    registration_date: r.registration_date,
    birth_date: r.birth_date,
    gender: str(r.gender),
    segment_name: str(r.segment_name),
    segment_description: str(r.segment_description),
    segment_category: str(r.segment_category),
    account_status: str(r.account_status),
    is_test_account: r.is_test_account,
    country_code: str(r.country_code),
    user_attributes: str(r.user_attributes),
  };
}

export class UserContext {
  private readonly o: UserContextOptions;
  /** anonymous id -> user id, or null when known to be unlinked (with a short expiry). */
  private readonly identities: Lru<string, string | null>;
  /** user id -> profile, or null when ClickHouse has none yet (with a short expiry). */
  private readonly profiles: Lru<string, Profile | null>;
  /** actor -> the latest UTC day (epoch days) this instance wrote an event of it for. */
  private readonly actorDays: Lru<string, number>;
  /**
   * The links and profiles of the batch being prepared (from prefetch on), kept whatever the caches
   * evict meanwhile: enrich must see every value prefetch found, or a cache budget smaller than one
   * batch's ids would write some of its events under their anonymous id. Cleared at the next batch.
   */
  private readonly batchIdentities = new Map<string, string | null>();
  private readonly batchProfiles = new Map<string, Profile | null>();
  /** event id -> actor, for the batch's re-delivered events prefetch found in the facts. */
  private readonly batchWritten = new Map<string, string>();
  /** Ids that may be linked (identity_map) / actors that may have a profile (dim_users). */
  private readonly linkKeys = new KeySet();
  private readonly profileKeys = new KeySet();
  private readonly sink: KeySink = {
    link: (id) => {
      this.linkKeys.add(id);
      // Known unlinked a moment ago: look it up again at once.
      if (this.identities.peek(id) === null) this.identities.delete(id);
    },
    profile: (id, bits) => {
      this.profileKeys.add(id, bits);
      // Whatever is cached (a negative answer, or a profile another member's identify has just
      // changed) is looked up again: dim_users has the merged profile by now.
      this.profiles.delete(id);
    },
    forget: (id) => {
      this.profiles.delete(id);
      this.identities.delete(id);
      this.actorDays.delete(id);
    },
  };
  /** Where knownSince continues; undefined: the sets are to be read in full. */
  private cursor: number | undefined;
  private refreshedAt = Number.NEGATIVE_INFINITY;
  private readonly now: () => number;

  constructor(o: UserContextOptions) {
    this.o = o;
    this.now = o.now ?? Date.now;
    this.identities = new Lru(o.maxEntries, this.now, { max: o.maxBytes, of: entryBytes.identity });
    this.profiles = new Lru(o.maxEntries, this.now, { max: o.maxBytes, of: entryBytes.profile });
    this.actorDays = new Lru(o.maxEntries, this.now, { max: o.maxBytes, of: entryBytes.actorDay });
  }

  /**
   * After every assignment (the first one at start too): read the sets in full again before the
   * next batch, because partitions new to this member bring actors whose attribute-carrying events
   * another member wrote.
   */
  assigned(): void {
    this.cursor = undefined;
  }

  /** Members of the link and profile sets (for the metrics). */
  knownSizes(): { links: number; profiles: number; bytes: number } {
    return {
      links: this.linkKeys.size,
      profiles: this.profileKeys.size,
      bytes: this.linkKeys.bytes + this.profileKeys.bytes,
    };
  }

  /** The sets read in full when due, else what other members identified since, at most every interval. */
  private async refreshKnown(): Promise<void> {
    const at = this.now();
    if (this.cursor === undefined) {
      this.cursor = await this.o.lookup.knownAll(this.sink);
    } else if (at - this.refreshedAt >= this.o.refreshIntervalMs) {
      this.cursor = await this.o.lookup.knownSince(this.cursor, this.sink);
    } else {
      return;
    }
    this.refreshedAt = at;
  }

  /**
   * Looks up, in one round trip per kind, every id the cache does not know and the sets say may
   * have a link or profile: the links and profiles of `activities`' actors and the previous
   * profiles of `identifies`' users (merged in observeIdentify). Those of `mayBeWritten` (activities
   * an earlier owner may have written) that the links would re-key are looked up in the facts.
   */
  async prefetch(
    activities: readonly ActivityRecord[],
    identifies: readonly IdentifyRecord[] = [],
    mayBeWritten: Iterable<ActivityRecord> = [],
  ): Promise<RedeliveryCheck> {
    this.batchIdentities.clear();
    this.batchProfiles.clear();
    this.batchWritten.clear();
    await this.refreshKnown();
    const anon = new Set<string>();
    for (const r of activities) {
      const a = str(r.anonymous_id);
      if (str(r.user_id) !== null || a === null || !this.linkKeys.has(a)) continue;
      const known = this.identities.get(a);
      if (known === undefined) anon.add(a);
      else this.batchIdentities.set(a, known);
    }
    if (anon.size > 0) {
      const found = await this.o.lookup.identities([...anon]);
      for (const a of anon) {
        const u = found.get(a);
        if (u === undefined) this.setIdentity(a, null, this.o.negativeTtlMs);
        else this.setIdentity(a, u);
      }
    }
    const check = await this.keepWrittenActors(mayBeWritten);
    const users = new Set<string>();
    for (const r of activities) {
      const u = this.actorOf(r);
      // Only a profile that may hold an attribute the event lacks can fill anything.
      const fillable = this.profileKeys.bits(u) & ~attributeBits(r);
      if (fillable !== 0) this.pinProfile(u, users);
    }
    for (const r of identifies) {
      const u = str(r.user_id);
      if (r.kind !== 'identify' || u === null || !this.profileKeys.has(u)) continue;
      this.pinProfile(u, users);
    }
    if (users.size > 0) {
      const found = await this.o.lookup.profiles([...users]);
      for (const u of users) {
        const p = found.get(u);
        // A profile without attributes comes from activity rows written while nobody knew the user
        // (e.g. its identify was on another member): as "not found", so it is asked again soon.
        if (p === undefined || isEmpty(p)) this.setProfile(u, null, this.o.negativeTtlMs);
        else this.setProfile(u, p);
      }
    }
    return check;
  }

  /**
   * The events that may be re-deliveries and that the links would re-key now, looked up in the
   * facts: those written already keep their actor (batchWritten).
   */
  private async keepWrittenActors(mayBeWritten: Iterable<ActivityRecord>): Promise<RedeliveryCheck> {
    const probed: ActivityRecord[] = [];
    for (const r of mayBeWritten) if (this.linkedUser(r) !== null) probed.push(r);
    if (probed.length === 0) return { probed, found: new Set(), kept: 0 };
    const written = await this.o.lookup.writtenActors(
      probed.map((r) => ({ eventId: r.event_id, activityTimestamp: r.activity_timestamp })),
    );
    let kept = 0;
    for (const r of probed) {
      const actor = written.get(r.event_id);
      if (actor === undefined) continue;
      if (actor !== this.actorOf(r)) kept += 1;
      this.batchWritten.set(r.event_id, actor);
    }
    return { probed, found: new Set(written.keys()), kept };
  }

  /** The batch keeps `u`'s cached profile, or `u` joins the ids to look up. */
  private pinProfile(u: string, missing: Set<string>): void {
    if (this.batchProfiles.has(u)) return;
    const known = this.profiles.get(u);
    if (known === undefined) missing.add(u);
    else this.batchProfiles.set(u, known);
  }

  private identity(anon: string): string | null | undefined {
    return this.batchIdentities.has(anon) ? this.batchIdentities.get(anon) : this.identities.get(anon);
  }

  private profile(actor: string): Profile | null | undefined {
    return this.batchProfiles.has(actor) ? this.batchProfiles.get(actor) : this.profiles.get(actor);
  }

  private setIdentity(anon: string, user: string | null, ttlMs?: number): void {
    this.identities.set(anon, user, ttlMs);
    this.batchIdentities.set(anon, user);
  }

  private setProfile(actor: string, p: Profile | null, ttlMs?: number): void {
    this.profiles.set(actor, p, ttlMs);
    this.batchProfiles.set(actor, p);
  }

  /**
   * An identify or alias seen in the stream: the link, and for an identify the traits merged over
   * the profile known so far (prefetch looked it up), ahead of look-ups. Returns the record to write:
   * an identify with the merged profile, so its dim_users row is complete (an alias writes none).
   * Identifies are merged in stream order, which is their order per user (keyed by user id).
   */
  observeIdentify(r: IdentifyRecord): IdentifyRecord {
    const userId = str(r.user_id);
    if (userId === null) return r;
    const linked = r.kind === 'alias' ? str(r.previous_id) : str(r.anonymous_id);
    // Earliest link wins: an id already linked to someone keeps that link.
    if (linked !== null && linked !== userId && !this.identity(linked)) this.setIdentity(linked, userId);
    if (linked !== null) this.linkKeys.add(linked);
    if (r.kind === 'alias') return r;
    this.profileKeys.add(userId, ALL_ATTRIBUTES);
    const merged = mergeProfile(this.profile(userId) ?? null, profileFromIdentify(r));
    this.setProfile(userId, merged);
    return { ...r, ...merged };
  }

  /**
   * The activity with its actor resolved and its missing profile attributes filled, in place: the
   * record is the pipeline's own decoded copy, and copying its ~45 fields for every event of a
   * known user was most of the allocation this step made.
   */
  enrich(r: ActivityRecord): Enriched {
    const resolvedUserId = this.linkedUser(r);
    const actor = actorId(r.user_id, r.anonymous_id, resolvedUserId);
    const profile = this.profile(actor);
    if (profile) {
      const filled = r as unknown as Record<string, unknown>;
      for (const f of PROFILE_FIELDS) {
        if (f === 'is_test_account') filled[f] = r.is_test_account || profile.is_test_account === true;
        else if (filled[f] === null || filled[f] === undefined) filled[f] = profile[f];
      }
    }
    // Its dim_users row makes the actor's attributes (the ones it wrote) a profile for its later
    // events.
    if (carriesProfile(r)) this.profileKeys.add(actor, attributeBits(r));
    const day = Math.floor(r.activity_timestamp / DAY_MS);
    const latest = this.actorDays.get(actor);
    const first = latest === undefined || day !== latest;
    if (latest === undefined || day > latest) this.actorDays.set(actor, day);
    return { record: r, resolvedUserId, isFirstDailyActivity: first };
  }

  private linkedUser(r: ActivityRecord): string | null {
    const anon = str(r.anonymous_id);
    if (str(r.user_id) !== null || anon === null) return null;
    // Empty but for a batch right after an assignment: no per-event lookup otherwise.
    const written = this.batchWritten.size > 0 ? this.batchWritten.get(r.event_id) : undefined;
    if (written !== undefined) return written === actorId(null, anon) ? null : written;
    return this.identity(anon) ?? null;
  }

  /** The identity that counts as one active user (the data model's actor_id). */
  private actorOf(r: ActivityRecord): string {
    return actorId(r.user_id, r.anonymous_id, this.linkedUser(r));
  }
}
