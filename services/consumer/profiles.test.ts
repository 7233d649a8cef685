import { describe, expect, it } from 'vitest';
import { activity, identify } from '../../test/fixtures/records.ts';
import { DAY_MS } from '../lib/time.ts';
import type { ActivityRecord, IdentifyRecord } from './ingest-row.ts';
import {
  ALL_ATTRIBUTES,
  attributeBits,
  entryBytes,
  mergeProfile,
  type Profile,
  type ProfileLookup,
  UserContext,
} from './profiles.ts';

const T0 = Date.UTC(2026, 5, 1, 10);

const act = (over: Record<string, unknown>): ActivityRecord =>
  activity({ activity_timestamp: T0, ...over }) as unknown as ActivityRecord;
const ident = (over: Record<string, unknown>): IdentifyRecord => identify(over) as unknown as IdentifyRecord;

const profile = (over: Partial<Profile>): Profile => ({
  registration_date: null,
  birth_date: null,
  gender: null,
  segment_name: null,
  segment_description: null,
  segment_category: null,
  account_status: null,
  is_test_account: null,
  country_code: null,
  user_attributes: null,
  ...over,
});

/**
 * A look-up over two maps, as ClickHouse would answer; knownAll names their keys, knownSince what
 * was `written` (by another member) since the cursor it returned last.
 */
function lookup(
  identities: Record<string, string>,
  profiles: Record<string, Profile>,
  /** Attribute bits knownAll names an id with, where not its profile's own (attributeBits). */
  bits: Record<string, number> = {},
  /** event id -> the actor its fact row was written under (the facts table). */
  facts: Record<string, string> = {},
) {
  const calls: string[] = [];
  const written: { at: number; profile?: string; link?: string; deleted?: string }[] = [];
  let clock = 0;
  const l: ProfileLookup = {
    knownAll: async (sink) => {
      calls.push('knownAll');
      for (const id of Object.keys(identities)) sink.link(id);
      for (const [id, p] of Object.entries(profiles)) sink.profile(id, bits[id] ?? attributeBits(p));
      return clock;
    },
    knownSince: async (cursor, sink) => {
      calls.push('knownSince');
      for (const w of written) {
        if (w.at < cursor) continue;
        if (w.profile) sink.profile(w.profile, ALL_ATTRIBUTES);
        if (w.link) sink.link(w.link);
        if (w.deleted) sink.forget(w.deleted);
      }
      return clock;
    },
    identities: async (ids) => {
      calls.push(`identities ${ids.join(',')}`);
      return new Map(ids.flatMap((id) => (identities[id] ? [[id, identities[id]] as const] : [])));
    },
    profiles: async (ids) => {
      calls.push(`profiles ${ids.join(',')}`);
      return new Map(ids.flatMap((id) => (profiles[id] ? [[id, profiles[id]] as const] : [])));
    },
    writtenActors: async (probes) => {
      calls.push(`written ${probes.map((p) => p.eventId).join(',')}`);
      return new Map(
        probes.flatMap((p) => {
          const actor = facts[p.eventId];
          return actor === undefined ? [] : [[p.eventId, actor] as const];
        }),
      );
    },
  };
  /** Another member's identify lands in ClickHouse: the maps and identify_log. */
  const otherMember = (o: { link?: [string, string]; profile?: [string, Profile] }) => {
    clock += 1;
    if (o.link) identities[o.link[0]] = o.link[1];
    if (o.profile) profiles[o.profile[0]] = o.profile[1];
    written.push({
      at: clock,
      ...(o.link ? { link: o.link[0] } : {}),
      ...(o.profile ? { profile: o.profile[0] } : {}),
    });
  };
  /** delete-user ran: the user's rows are gone and identify_log names the ids. */
  const deleted = (ids: readonly string[]) => {
    clock += 1;
    for (const id of ids) {
      delete profiles[id];
      delete identities[id];
      written.push({ at: clock, deleted: id });
    }
  };
  return { l, calls, otherMember, deleted };
}

const REFRESH_MS = 5_000;

function context(l: ProfileLookup, now: () => number = () => T0, negativeTtlMs = 1_000) {
  return new UserContext({
    lookup: l,
    maxEntries: 100,
    maxBytes: 1_000_000,
    negativeTtlMs,
    refreshIntervalMs: REFRESH_MS,
    now,
  });
}

/** The look-ups of ids, without the known-id reads. */
const idLookups = (calls: readonly string[]) => calls.filter((c) => !c.startsWith('known'));

describe('UserContext', () => {
  it('a restarted consumer (empty cache) resolves the anonymous id and fills the profile from look-ups', async () => {
    const { l, calls } = lookup(
      { a1: 'u1' },
      {
        u1: profile({
          segment_name: 'pro',
          segment_description: 'paying teams',
          segment_category: 'paid',
          gender: 'f',
          country_code: 'FR',
          is_test_account: true,
        }),
      },
    );
    const ctx = context(l);
    const r = act({ anonymous_id: 'a1' });
    await ctx.prefetch([r]);
    const e = ctx.enrich(r);
    expect(e.resolvedUserId).toBe('u1');
    expect(e.record).toMatchObject({
      segment_name: 'pro',
      segment_description: 'paying teams',
      segment_category: 'paid',
      gender: 'f',
      country_code: 'FR',
      is_test_account: true,
    });
    expect(idLookups(calls)).toEqual(['identities a1', 'profiles u1']);
    // Cached now: no second look-up.
    await ctx.prefetch([act({ anonymous_id: 'a1' })]);
    expect(idLookups(calls)).toHaveLength(2);
  });

  it('values on the event win over the profile; the profile only fills what is missing', async () => {
    const { l } = lookup({}, { u1: profile({ segment_name: 'pro', gender: 'f', country_code: 'DE' }) });
    const ctx = context(l);
    const r = act({ user_id: 'u1', segment_name: 'free', country_code: null });
    await ctx.prefetch([r]);
    expect(ctx.enrich(r).record).toMatchObject({ segment_name: 'free', gender: 'f', country_code: 'DE' });
  });

  it('an identify in the stream updates the link and the profile ahead of any look-up', async () => {
    const { l, calls } = lookup({}, {});
    const ctx = context(l);
    ctx.observeIdentify(ident({ user_id: 'u2', anonymous_id: 'a2', segment_name: 'team' }));
    const r = act({ anonymous_id: 'a2' });
    await ctx.prefetch([r]);
    expect(idLookups(calls)).toEqual([]);
    const e = ctx.enrich(r);
    expect(e.resolvedUserId).toBe('u2');
    expect(e.record.segment_name).toBe('team');
  });

  it('an identify with some traits keeps the earlier ones (regression: a partial identify wiped them)', async () => {
    const ctx = context(lookup({}, {}).l);
    ctx.observeIdentify(ident({ user_id: 'u', segment_name: 'pro', gender: 'f' }));
    const written = ctx.observeIdentify(ident({ user_id: 'u', account_status: 'active' }));
    // The row written to dim_users carries the whole profile, so the newest dim_users row is complete.
    expect(written).toMatchObject({ segment_name: 'pro', gender: 'f', account_status: 'active' });
    const r = act({ user_id: 'u' });
    await ctx.prefetch([r]);
    expect(ctx.enrich(r).record).toMatchObject({
      segment_name: 'pro',
      gender: 'f',
      account_status: 'active',
    });
  });

  it('merges an identify over the profile in ClickHouse when the cache misses, in one look-up per batch', async () => {
    const { l, calls } = lookup({}, { u: profile({ segment_name: 'pro', country_code: 'FR' }) });
    const ctx = context(l);
    const identifies = [ident({ user_id: 'u', gender: 'f' }), ident({ user_id: 'v', gender: 'm' })];
    await ctx.prefetch([], identifies);
    // v has no profile in ClickHouse (not among the known ids): nothing to ask about it.
    expect(idLookups(calls)).toEqual(['profiles u']);
    expect(ctx.observeIdentify(identifies[0] as IdentifyRecord)).toMatchObject({
      segment_name: 'pro',
      country_code: 'FR',
      gender: 'f',
    });
    expect(ctx.observeIdentify(identifies[1] as IdentifyRecord)).toMatchObject({
      segment_name: null,
      gender: 'm',
    });
  });

  it('takes a look-up answer without attributes as "not found" (an identify elsewhere may fill it soon)', async () => {
    let now = T0;
    const profiles: Record<string, Profile> = { u: profile({ is_test_account: false }) };
    // Named with every bit, as an identify's user is (identify_log), though its row has none yet.
    const { l, calls } = lookup({}, profiles, { u: ALL_ATTRIBUTES });
    const ctx = context(l, () => now);
    await ctx.prefetch([act({ user_id: 'u' })]);
    profiles.u = profile({ segment_name: 'pro' });
    now += 1_001;
    const r = act({ user_id: 'u' });
    await ctx.prefetch([r]);
    expect(idLookups(calls)).toEqual(['profiles u', 'profiles u']);
    expect(ctx.enrich(r).record.segment_name).toBe('pro');
  });

  it('keeps the earliest link of an anonymous id (it never moves to another user)', () => {
    const ctx = context(lookup({}, {}).l);
    ctx.observeIdentify(ident({ user_id: 'first', anonymous_id: 'a' }));
    ctx.observeIdentify(ident({ user_id: 'second', anonymous_id: 'a' }));
    expect(ctx.enrich(act({ anonymous_id: 'a' })).resolvedUserId).toBe('first');
  });

  it('an alias links previous_id without replacing the profile', () => {
    const ctx = context(lookup({}, {}).l);
    ctx.observeIdentify(ident({ user_id: 'u', kind: 'identify', gender: 'm' }));
    ctx.observeIdentify(ident({ user_id: 'u', kind: 'alias', previous_id: 'old' }));
    const e = ctx.enrich(act({ anonymous_id: 'old' }));
    expect(e.resolvedUserId).toBe('u');
    expect(e.record.gender).toBe('m');
  });

  it('trusts "not found" of a known id only for the negative TTL (its row may not be visible yet)', async () => {
    let now = T0;
    // Listed among the known ids but not found by the look-up (yet): '' is "no link" here.
    const ids: Record<string, string> = { a3: '' };
    const { l, calls } = lookup(ids, {});
    const ctx = context(l, () => now);
    await ctx.prefetch([act({ anonymous_id: 'a3' })]);
    ids.a3 = 'u3';
    await ctx.prefetch([act({ anonymous_id: 'a3' })]);
    expect(calls.filter((c) => c.startsWith('identities'))).toHaveLength(1);
    now += 1_001;
    await ctx.prefetch([act({ anonymous_id: 'a3' })]);
    expect(ctx.enrich(act({ anonymous_id: 'a3' })).resolvedUserId).toBe('u3');
  });

  it('asks ClickHouse nothing about ids that have no link or profile there (new users)', async () => {
    const { l, calls } = lookup({ a1: 'u1' }, { u1: profile({ segment_name: 'pro' }) });
    const ctx = context(l);
    const batch = Array.from({ length: 20_000 }, (_, i) =>
      act(i % 2 === 0 ? { user_id: `new-${i}` } : { anonymous_id: `anon-${i}` }),
    );
    await ctx.prefetch(batch);
    expect(calls).toEqual(['knownAll']);
    const e = ctx.enrich(batch[1] as ActivityRecord);
    expect(e.resolvedUserId).toBeNull();
    expect(e.record.segment_name).toBeNull();
    expect(e.isFirstDailyActivity).toBe(true);
  });

  it("sees another member's identify at the first batch after the refresh interval, dropping the negative answer", async () => {
    let now = T0;
    const { l, calls, otherMember } = lookup({ a9: '' }, {});
    const ctx = context(l, () => now, 600_000);
    await ctx.prefetch([act({ anonymous_id: 'a9' }), act({ anonymous_id: 'b9' })]);
    // a9 was asked about (known) and found unlinked; b9 is unknown: not asked.
    expect(idLookups(calls)).toEqual(['identities a9']);
    otherMember({ link: ['a9', 'u9'], profile: ['u9', profile({ segment_name: 'pro' })] });
    otherMember({ link: ['b9', 'u9'] });
    now += REFRESH_MS - 1;
    await ctx.prefetch([act({ anonymous_id: 'b9' })]);
    expect(ctx.enrich(act({ anonymous_id: 'b9' })).resolvedUserId).toBeNull();
    now += 1;
    const a = act({ anonymous_id: 'a9' });
    const b = act({ anonymous_id: 'b9' });
    await ctx.prefetch([a, b]);
    expect(calls.filter((c) => c === 'knownSince')).toHaveLength(1);
    // a9's negative entry (600 s TTL) was dropped by the refresh that named it.
    expect(ctx.enrich(a)).toMatchObject({ resolvedUserId: 'u9', record: { segment_name: 'pro' } });
    expect(ctx.enrich(b)).toMatchObject({ resolvedUserId: 'u9', record: { segment_name: 'pro' } });
  });

  it("another member's identify replaces a profile this member has cached, after the next refresh", async () => {
    let now = T0;
    const { l, otherMember } = lookup({}, { u7: profile({ segment_name: 'pro' }) });
    const ctx = context(l, () => now);
    const first = act({ user_id: 'u7' });
    await ctx.prefetch([first]);
    expect(ctx.enrich(first).record.segment_name).toBe('pro');
    // Regression: the refresh dropped only negative entries, so a cached profile outlived the
    // identify another member wrote for it until it was evicted.
    otherMember({ profile: ['u7', profile({ segment_name: 'team' })] });
    now += REFRESH_MS;
    const later = act({ user_id: 'u7' });
    await ctx.prefetch([later]);
    expect(ctx.enrich(later).record.segment_name).toBe('team');
  });

  it("an activity carrying attributes gives its actor a profile: the actor's later bare events look it up", async () => {
    const profiles: Record<string, Profile> = {};
    const { l, calls } = lookup({}, profiles);
    const ctx = context(l, () => T0);
    ctx.enrich(act({ user_id: 'w', segment_name: 'pro' }));
    // Evicted from the cache (or written before a restart that kept the set): asked for again.
    profiles.w = profile({ segment_name: 'pro' });
    const other = context(l);
    await other.prefetch([act({ user_id: 'w' })]);
    expect(idLookups(calls)).toEqual(['profiles w']);
    // A geo country alone (migration 0009's version-0 row) is not a profile: no look-up.
    const c3 = context(lookup({}, {}).l);
    c3.enrich(act({ user_id: 'g', country_code: 'FR' }));
    await ctx.prefetch([act({ user_id: 'g' })]);
    expect(idLookups(calls)).toEqual(['profiles w']);
  });

  it('looks up only actors whose profile may hold an attribute the event lacks', async () => {
    const { l, calls } = lookup({}, { u: profile({ segment_name: 'pro', gender: 'f' }) });
    const ctx = context(l);
    // The event carries every attribute u's profile has: nothing to fill, no look-up.
    await ctx.prefetch([act({ user_id: 'u', segment_name: 'team', gender: 'm' })]);
    expect(idLookups(calls)).toEqual([]);
    // It lacks gender: looked up, and gender filled.
    const bare = act({ user_id: 'u', segment_name: 'team' });
    await ctx.prefetch([bare]);
    expect(idLookups(calls)).toEqual(['profiles u']);
    expect(ctx.enrich(bare).record).toMatchObject({ segment_name: 'team', gender: 'f' });

    // Attributes this consumer wrote count the same way: a second pass over users the cache has
    // evicted (more users than maxEntries) needs no look-up while events carry the same traits.
    const traits = { segment_name: 'pro', gender: 'f', birth_date: 7_000 };
    const again = Array.from({ length: 300 }, (_, i) => act({ user_id: `w${i}`, ...traits }));
    const second = lookup({}, {});
    const w2 = new UserContext({
      lookup: second.l,
      maxEntries: 100,
      maxBytes: 1_000_000,
      negativeTtlMs: 1_000,
      refreshIntervalMs: REFRESH_MS,
      now: () => T0,
    });
    for (let i = 0; i < 300; i += 1) w2.enrich(act({ user_id: `w${i}`, ...traits }));
    await w2.prefetch(again);
    expect(idLookups(second.calls)).toEqual([]);
    await w2.prefetch([act({ user_id: 'w0', segment_name: 'pro' })]);
    expect(idLookups(second.calls)).toEqual(['profiles w0']);
  });

  it('bounds the profile cache by estimated bytes: profiles with long traits are evicted sooner', async () => {
    // Traits (user_attributes) can be as long as an event: 100 entries of them would be 1 MB here.
    const long = profile({ segment_name: 'pro', user_attributes: 'x'.repeat(10_000) });
    const users = Array.from({ length: 20 }, (_, i) => `p${i}`);
    const { l, calls } = lookup({}, Object.fromEntries(users.map((u) => [u, long])));
    const ctx = new UserContext({
      lookup: l,
      maxEntries: 100,
      maxBytes: 100_000,
      negativeTtlMs: 1_000,
      refreshIntervalMs: REFRESH_MS,
      now: () => T0,
    });
    for (const u of users) await ctx.prefetch([act({ user_id: u })]);
    const lookedUp = (u: string) => idLookups(calls).filter((c) => c === `profiles ${u}`).length;
    await ctx.prefetch([act({ user_id: 'p19' })]);
    expect(lookedUp('p19')).toBe(1);
    // About 10 KB each: a 100 KB budget holds fewer than ten of them, so the first one is gone.
    await ctx.prefetch([act({ user_id: 'p0' })]);
    expect(lookedUp('p0')).toBe(2);
    expect(entryBytes.profile('p0', long)).toBeGreaterThan(10_000);
  });

  it('resolves every id of a batch even when the batch has more ids than its caches hold', async () => {
    const n = 300;
    const links = Object.fromEntries(Array.from({ length: n }, (_, i) => [`anon-${i}`, `user-${i}`]));
    const profiles = Object.fromEntries(
      Array.from({ length: n }, (_, i) => [
        `user-${i}`,
        profile({ segment_name: `seg-${i}`, country_code: 'FR' }),
      ]),
    );
    const { l } = lookup(links, profiles);
    // The smallest caches the config allows room for: far fewer entries than the batch's ids.
    const ctx = new UserContext({
      lookup: l,
      maxEntries: 2,
      maxBytes: 65_536,
      negativeTtlMs: 1_000,
      refreshIntervalMs: REFRESH_MS,
      now: () => T0,
    });
    const batch = Array.from({ length: n }, (_, i) =>
      act({ user_id: null, anonymous_id: `anon-${i}`, segment_name: null, country_code: null }),
    );
    await ctx.prefetch(batch);
    const enriched = batch.map((r) => ctx.enrich(r));
    expect(enriched.map((e) => e.resolvedUserId)).toEqual(batch.map((_, i) => `user-${i}`));
    expect(enriched.map((e) => e.record.segment_name)).toEqual(batch.map((_, i) => `seg-${i}`));
  });

  it('forgets what it cached about a deleted user and its linked id at the next refresh', async () => {
    let now = T0;
    const { l, deleted } = lookup({ a9: 'gone' }, { gone: profile({ segment_name: 'pro' }) });
    const ctx = context(l, () => now);
    const before = act({ anonymous_id: 'a9' });
    await ctx.prefetch([before]);
    expect(ctx.enrich(before)).toMatchObject({ resolvedUserId: 'gone', record: { segment_name: 'pro' } });
    deleted(['gone', 'a9']);
    now += REFRESH_MS;
    const after = act({ anonymous_id: 'a9' });
    await ctx.prefetch([after]);
    const e = ctx.enrich(after);
    expect(e.resolvedUserId).toBeNull();
    expect(e.record.segment_name).toBeNull();
  });

  describe('re-delivery (the events the pipeline says may have been written before)', () => {
    // a1 was linked to u1 after e1 was written under anon:a1 (by this or an earlier owner).
    const setupRedelivery = () => {
      const { l, calls } = lookup({ a1: 'u1' }, {}, {}, { e1: 'anon:a1', e2: 'u1' });
      return { ctx: context(l), calls };
    };

    it('keeps the actor a possibly written event was written under', async () => {
      const { ctx, calls } = setupRedelivery();
      const again = act({ event_id: 'e1', anonymous_id: 'a1' });
      const same = act({ event_id: 'e2', anonymous_id: 'a1' });
      const fresh = act({ event_id: 'e3', anonymous_id: 'a1' });
      const check = await ctx.prefetch([again, same, fresh], [], new Set([again, same, fresh]));
      expect(check.kept).toBe(1);
      expect(check.probed).toEqual([again, same, fresh]);
      expect([...check.found].sort()).toEqual(['e1', 'e2']);
      expect(idLookups(calls)).toEqual(['identities a1', 'written e1,e2,e3']);
      expect(ctx.enrich(again).resolvedUserId).toBeNull();
      expect(ctx.enrich(same).resolvedUserId).toBe('u1');
      expect(ctx.enrich(fresh).resolvedUserId).toBe('u1');
    });

    it('looks up only possibly written events that the links would re-key', async () => {
      const { ctx, calls } = setupRedelivery();
      const notSuspect = act({ event_id: 'e1', anonymous_id: 'a1' });
      const unlinked = act({ event_id: 'e4', anonymous_id: 'a2' });
      const identified = act({ event_id: 'e5', user_id: 'u2' });
      const check = await ctx.prefetch(
        [notSuspect, unlinked, identified],
        [],
        new Set([unlinked, identified]),
      );
      expect(check).toEqual({ probed: [], found: new Set(), kept: 0 });
      expect(calls.filter((c) => c.startsWith('written'))).toEqual([]);
      expect(ctx.enrich(notSuspect).resolvedUserId).toBe('u1');
    });

    it('forgets what it found at the next batch', async () => {
      const { ctx } = setupRedelivery();
      const first = act({ event_id: 'e1', anonymous_id: 'a1' });
      await ctx.prefetch([first], [], new Set([first]));
      const sameIdLater = act({ event_id: 'e1', anonymous_id: 'a1' });
      await ctx.prefetch([sameIdLater]);
      expect(ctx.enrich(sameIdLater).resolvedUserId).toBe('u1');
    });
  });

  it('reads the known ids in full again after a rebalance', async () => {
    const { l, calls } = lookup({}, {});
    const ctx = context(l);
    await ctx.prefetch([act({ user_id: 'u' })]);
    ctx.assigned();
    await ctx.prefetch([act({ user_id: 'u' })]);
    expect(calls).toEqual(['knownAll', 'knownAll']);
  });

  describe('is_first_daily_activity (best effort, per instance)', () => {
    it('is 1 for the first event of an actor on a UTC day, 0 for the next ones, 1 again the next day', () => {
      const ctx = context(lookup({}, {}).l);
      expect(ctx.enrich(act({ user_id: 'u' })).isFirstDailyActivity).toBe(true);
      expect(ctx.enrich(act({ user_id: 'u', activity_timestamp: T0 + 3_600_000 })).isFirstDailyActivity).toBe(
        false,
      );
      expect(ctx.enrich(act({ user_id: 'v' })).isFirstDailyActivity).toBe(true);
      expect(ctx.enrich(act({ user_id: 'u', activity_timestamp: T0 + DAY_MS })).isFirstDailyActivity).toBe(
        true,
      );
    });

    it('marks a late event of an earlier day 1 (at least one per actor-day) without forgetting the later day', () => {
      const ctx = context(lookup({}, {}).l);
      const at = (days: number) => act({ user_id: 'u', activity_timestamp: T0 + days * DAY_MS });
      expect(ctx.enrich(at(2)).isFirstDailyActivity).toBe(true);
      expect(ctx.enrich(at(1)).isFirstDailyActivity).toBe(true);
      expect(ctx.enrich(at(2)).isFirstDailyActivity).toBe(false);
      expect(ctx.enrich(at(3)).isFirstDailyActivity).toBe(true);
    });

    it('counts an anonymous event under the user it resolves to', () => {
      const ctx = context(lookup({}, {}).l);
      ctx.observeIdentify(ident({ user_id: 'u', anonymous_id: 'a' }));
      expect(ctx.enrich(act({ user_id: 'u' })).isFirstDailyActivity).toBe(true);
      expect(ctx.enrich(act({ anonymous_id: 'a' })).isFirstDailyActivity).toBe(false);
    });

    it('a new instance (restart, rebalance) may mark a second event of the day as first: at least one per actor-day', () => {
      const before = context(lookup({}, {}).l);
      const after = context(lookup({}, {}).l);
      expect(before.enrich(act({ user_id: 'u' })).isFirstDailyActivity).toBe(true);
      expect(after.enrich(act({ user_id: 'u' })).isFirstDailyActivity).toBe(true);
    });
  });
});

describe('mergeProfile', () => {
  it('takes, per attribute, the newer value when it has one and the older one otherwise', () => {
    const older = profile({ segment_name: 'pro', gender: 'f', is_test_account: true, birth_date: 7000 });
    const newer = profile({ segment_name: 'team', account_status: 'active', is_test_account: false });
    expect(mergeProfile(older, newer)).toEqual(
      profile({
        segment_name: 'team',
        gender: 'f',
        account_status: 'active',
        // false is a value (the identify said so), not a missing one.
        is_test_account: false,
        birth_date: 7000,
      }),
    );
    expect(mergeProfile(null, newer)).toEqual(newer);
  });
});
