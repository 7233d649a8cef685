/**
 * Counterexamples the pipeline fuzz (pipeline-fuzz.test.ts) found, each as a plain test on the same
 * end-to-end path: the real collector, Kafka, the real consumer process, ClickHouse. Each test has
 * its own pipeline (database, topics, consumer), so one that wedges its consumer cannot fail the
 * others. The invariant is the fuzz's: what a 2xx acknowledged is counted once and never
 * dead-lettered, what was refused is named with "<field>: <why>", no 5xx, and the pipeline keeps
 * flowing (a canary lands, fetching not paused, lag back to 0).
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  deadLetters,
  factRows,
  type Pipeline,
  profilesOf,
  sendCanary,
  startPipeline,
  waitForNoLag,
} from '../harness/pipeline.ts';
import { type Posted, post } from './collector-harness.ts';

const NAMED = /^[A-Za-z_][\w.[\]]*: \S/;
const TIMEOUT_MS = 90_000;

async function withPipeline(name: string, fn: (p: Pipeline) => Promise<void>): Promise<void> {
  const p = await startPipeline(name);
  try {
    await fn(p);
  } finally {
    await p.close();
  }
}

const event = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  event_id: randomUUID(),
  user_id: `u-${randomUUID()}`,
  activity: 'login',
  feature: 'search',
  ...over,
});

/** Event ids a response acknowledged, of those sent (a rejection names its event id). */
function acknowledged(res: Posted, sentIds: readonly string[]): string[] {
  expect(res.status, JSON.stringify(res.body)).toBeLessThan(500);
  if (res.status !== 200) return [];
  const refused = new Set((res.body.rejected ?? []).map((r) => r.event_id));
  for (const r of res.body.rejected ?? []) for (const e of r.errors) expect(e).toMatch(NAMED);
  return sentIds.filter((id) => !refused.has(id));
}

/**
 * The invariant after the requests of a test: the pipeline flows (canary, no pause, no lag), each
 * acknowledged activity id is one row of fact_user_activity, each acknowledged identify's user has
 * a profile, and no acknowledged id is in the dead-letter topic.
 */
async function expectCounted(
  p: Pipeline,
  o: { activities?: readonly string[]; identifies?: ReadonlyArray<{ id: string; user: string }> },
): Promise<void> {
  const canary = await sendCanary(p, 30_000);
  const state = await waitForNoLag(p, canary.landed ? 20_000 : 1_000);
  const dead = await deadLetters(p.setup.topics.kafka, p.setup.dlqTopic);
  expect(canary.landed, 'a canary sent afterwards is counted').toBe(true);
  expect(state, 'consumer flowing').toMatchObject({ paused: 0, lag: 0 });
  const acked = new Set([...(o.activities ?? []), ...(o.identifies ?? []).map((i) => i.id)]);
  expect(
    dead.filter((d) => d.eventId !== undefined && acked.has(d.eventId)).map((d) => `${d.reason}: ${d.error}`),
    'acknowledged events dead-lettered',
  ).toEqual([]);
  const rows = await factRows(p.setup.db.client, o.activities ?? []);
  expect(
    Object.fromEntries((o.activities ?? []).map((id) => [id, rows.get(id) ?? 0])),
    'rows per acknowledged activity',
  ).toEqual(Object.fromEntries((o.activities ?? []).map((id) => [id, 1])));
  const users = (o.identifies ?? []).map((i) => i.user);
  expect(
    [...(await profilesOf(p.setup.db.client, users))].sort(),
    'profiles of acknowledged identifies',
  ).toEqual([...new Set(users)].sort());
}

describe('pipeline regressions (found by the pipeline fuzz)', () => {
  for (const sentAt of ['0001-01-01T00:00:00Z', '1969-12-31T23:59:59Z']) {
    it(
      `sent_at ${sentAt} on /v1/events: the events acknowledged are counted and the consumer does not wedge`,
      () =>
        withPipeline('regress_sent_at', async (p) => {
          const events = [event(), event()];
          const res = await post(`${p.collector.url}/v1/events`, { sent_at: sentAt, events });
          await expectCounted(p, {
            activities: acknowledged(
              res,
              events.map((e) => e.event_id as string),
            ),
          });
        }),
      TIMEOUT_MS,
    );
  }

  it(
    'an event without a feature is counted, not dead-lettered (native and Segment track/page/screen/group)',
    () =>
      withPipeline('regress_no_feature', async (p) => {
        const native = event({ feature: undefined });
        const ids = [native.event_id as string];
        const res = await post(`${p.collector.url}/v1/events`, { events: [native] });
        const acked = acknowledged(res, ids);
        const segment = (['track', 'page', 'screen', 'group'] as const).map((type) => ({
          type,
          messageId: randomUUID(),
          userId: `u-${randomUUID()}`,
          ...(type === 'track' ? { event: 'Signed In' } : {}),
          ...(type === 'group' ? { groupId: 'g1' } : {}),
        }));
        const batch = await post(`${p.collector.url}/v1/batch`, { batch: segment });
        acked.push(
          ...acknowledged(
            batch,
            segment.map((m) => m.messageId),
          ),
        );
        expect(acked, 'events without a feature are normal events').toHaveLength(5);
        await expectCounted(p, { activities: acked });
      }),
    TIMEOUT_MS,
  );

  it(
    'session_id 9007199254740991 (the contract maximum) is no 5xx and its batch-mates are counted',
    () =>
      withPipeline('regress_session_max', async (p) => {
        const events = [event({ session_id: Number.MAX_SAFE_INTEGER }), event({ session_id: 1 })];
        const res = await post(`${p.collector.url}/v1/events`, { events });
        const acked = acknowledged(
          res,
          events.map((e) => e.event_id as string),
        );
        expect(acked, 'the plain event beside it').toContain(events[1]?.event_id);
        await expectCounted(p, { activities: acked });
      }),
    TIMEOUT_MS,
  );

  it(
    'a Segment context.sessionId of 9007199254740991 is no 5xx',
    () =>
      withPipeline('regress_segment_session_max', async (p) => {
        const messageId = randomUUID();
        const res = await post(`${p.collector.url}/v1/track`, {
          messageId,
          userId: 'u1',
          event: 'Clicked',
          properties: { feature: 'search' },
          context: { sessionId: Number.MAX_SAFE_INTEGER },
        });
        await expectCounted(p, { activities: acknowledged(res, [messageId]) });
      }),
    TIMEOUT_MS,
  );

  it(
    'a Segment alias without previousId is refused naming previousId (not stored as an identify)',
    () =>
      withPipeline('regress_alias_no_previous', async (p) => {
        const res = await post(`${p.collector.url}/v1/batch`, {
          batch: [{ type: 'alias', messageId: randomUUID(), userId: `u-${randomUUID()}` }],
        });
        expect(res.status).toBe(400);
        expect(res.body.rejected?.[0]?.errors).toEqual([expect.stringMatching(/^previousId: /)]);
      }),
    TIMEOUT_MS,
  );

  it(
    'registration_date before 1970 (identify createdAt 0001, event user.registration_date 1969) is counted, the consumer does not wedge',
    () =>
      withPipeline('regress_registration_pre_1970', async (p) => {
        const identify = { messageId: randomUUID(), userId: `u-${randomUUID()}` };
        const a = await post(`${p.collector.url}/v1/identify`, {
          ...identify,
          traits: { createdAt: '0001-01-01T00:00:00Z' },
        });
        const ev = event({ user: { registration_date: '1969-12-31T23:59:59Z' } });
        const b = await post(`${p.collector.url}/v1/events`, { events: [ev] });
        await expectCounted(p, {
          activities: acknowledged(b, [ev.event_id as string]),
          identifies: acknowledged(a, [identify.messageId]).map((id) => ({ id, user: identify.userId })),
        });
      }),
    TIMEOUT_MS,
  );

  it(
    'a lone surrogate in user_id is refused naming user_id, or stored as U+FFFD (not as three)',
    () =>
      withPipeline('regress_lone_surrogate', async (p) => {
        const user = `u-${randomUUID().slice(0, 8)}\ud800`;
        const id = randomUUID();
        const res = await post(`${p.collector.url}/v1/identify`, { event_id: id, user_id: user });
        const acked = acknowledged(res, [id]);
        if (acked.length === 0) {
          expect(res.body.rejected?.[0]?.errors).toEqual([expect.stringMatching(/^user_id: /)]);
          return;
        }
        // What a well-formed UTF-8 encoding of the string is (what the same id becomes when long).
        await expectCounted(p, { identifies: [{ id, user: Buffer.from(user, 'utf8').toString('utf8') }] });
      }),
    TIMEOUT_MS,
  );
});
