/**
 * Bytes the consumer's identity, profile and actor-day caches (services/consumer/profiles.ts) hold
 * once full, each on its own and all three together, and the bytes of its two key sets: V8's used
 * heap after a full GC, with the context filled, minus the same before (docs/SCALING.md "Memory").
 *
 *   node --expose-gc bench/measure-caches.ts [entries=200000] [known=1000000] [maxBytes=unbounded]
 *
 * `entries` is the cache cap (CACHE_MAX_ENTRIES); twice that many distinct ids go through each
 * cache, so its two generations are both full, as in a long run with more users than the cap.
 * Records take the consumer's path: Avro-encoded, decoded by the contract's codec in batches of
 * BATCH (the ids in the caches are the decoder's strings), then prefetch + enrich. Look-up answers
 * are built per id as the ClickHouse client returns them (JSON.parse of a row), not held in a table
 * (which would be counted): user ids of 18 characters as bench scenario 7 sends, anonymous ids of
 * 36 (UUIDs), profiles with every attribute set.
 */
import { randomUUID } from 'node:crypto';
import type { ActivityRecord } from '../services/consumer/ingest-row.ts';
import { ALL_ATTRIBUTES, type ProfileLookup, UserContext } from '../services/consumer/profiles.ts';
import { SCHEMA_HEADER } from '../services/lib/avro.ts';
import { activity, codec, encoded } from '../test/fixtures/records.ts';
import { MB } from './lib/measure.ts';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  process.stderr.write('run with node --expose-gc bench/measure-caches.ts [entries] [known] [maxBytes]\n');
  process.exit(2);
}
const entries = Number(process.argv[2] ?? 200_000);
const known = Number(process.argv[3] ?? 1_000_000);
// Each cache's byte budget (CACHE_MAX_BYTES); unbounded by default, so the entry cap is measured.
const maxBytes = Number(process.argv[4] ?? Number.POSITIVE_INFINITY);
const BATCH = 10_000;
const tag = randomUUID().replace(/-/g, '').slice(0, 10);

/** Ids of the i-th user: its anonymous id (a UUID) and user id (`sqmx2bvuw9_u535865`). */
const anonId = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
const userId = (i: number) => `${tag}_u${String(i).padStart(6, '0')}`;
const indexOf = (id: string) => Number(id.slice(-6));

/** A dim_users row as profileQuery returns it, through JSON like the client's rs.json(). */
function profileRow(id: string) {
  const i = indexOf(id);
  const row = JSON.parse(
    JSON.stringify({
      registration_date: 1_700_000_000 + i,
      birth_date: '1990-05-01',
      gender: i % 2 === 0 ? 'female' : 'male',
      segment_name: `segment-${i % 50}`,
      segment_description: `customers of segment ${i % 50}, self-serve`,
      segment_category: 'smb',
      account_status: 'active',
      is_test_account: 0,
      country_code: 'DE',
      user_attributes: `{"plan":"pro","seats":${i % 40},"company":"Company ${i}"}`,
    }),
  );
  return {
    ...row,
    registration_date: row.registration_date * 1000,
    birth_date: Math.round(Date.parse(row.birth_date) / 86_400_000),
    is_test_account: row.is_test_account === 1,
  };
}

function lookup(o: { links: boolean; profiles: boolean }): ProfileLookup {
  return {
    knownAll: async (sink) => {
      for (let i = 0; i < known; i += 1) {
        if (o.links) sink.link(anonId(i));
        if (o.profiles) sink.profile(userId(i), ALL_ATTRIBUTES);
      }
      return 0;
    },
    knownSince: async (cursor) => cursor,
    identities: async (ids) => new Map(ids.map((a) => [a, userId(indexOf(a))])),
    profiles: async (ids) => new Map(ids.map((u) => [u, profileRow(u)])),
    writtenActors: async () => new Map(),
  };
}

/** Users [from, from + n) as decoded activity records: anonymous (linked later) or identified. */
function decodedBatch(from: number, n: number, anonymous: boolean): ActivityRecord[] {
  const out: ActivityRecord[] = [];
  for (let i = from; i < from + n; i += 1) {
    const m = encoded(
      'user_activity',
      activity(anonymous ? { anonymous_id: anonId(i) } : { user_id: userId(i) }),
    );
    out.push(
      codec.decode(m.headers[SCHEMA_HEADER] ?? '', m.value as Buffer).value as unknown as ActivityRecord,
    );
  }
  return out;
}

/** V8's used heap and ArrayBuffers (the key sets' typed arrays live outside the heap). */
const heapUsed = () => {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

/** Heap bytes a context holds after 2 x entries users went through it as `how` says. */
async function measure(how: { anonymous: boolean; links: boolean; profiles: boolean; enrich: boolean }) {
  const before = heapUsed();
  const context = new UserContext({
    lookup: lookup(how),
    maxEntries: entries,
    maxBytes,
    negativeTtlMs: 60_000,
    refreshIntervalMs: 5_000,
  });
  await context.prefetch([]);
  const sets = heapUsed() - before;
  for (let from = 0; from < 2 * entries; from += BATCH) {
    const batch = decodedBatch(from, BATCH, how.anonymous);
    await context.prefetch(batch);
    if (how.enrich) for (const r of batch) context.enrich(r);
  }
  const total = heapUsed() - before;
  return { context, setsMb: sets / MB, cachesMb: (total - sets) / MB, perEntryB: (total - sets) / entries };
}

const cases = {
  'actor-day only (identified users whose events carry their attributes: scenario 7)': {
    anonymous: false,
    links: false,
    profiles: false,
    enrich: true,
  },
  'identities only (anonymous ids, each linked)': {
    anonymous: true,
    links: true,
    profiles: false,
    enrich: false,
  },
  'profiles only (identified users, attributes from dim_users)': {
    anonymous: false,
    links: false,
    profiles: true,
    enrich: false,
  },
  'all three (anonymous ids linked to users with profiles)': {
    anonymous: true,
    links: true,
    profiles: true,
    enrich: true,
  },
};
for (const [name, how] of Object.entries(cases)) {
  const r = await measure(how);
  process.stdout.write(
    `${JSON.stringify({
      case: name,
      entries,
      known,
      cachesMb: Math.round(r.cachesMb),
      bytesPerEntry: Math.round(r.perEntryB),
      keySetsMb: Math.round(r.setsMb),
      keySetsCounted: r.context.knownSizes(),
    })}\n`,
  );
}
