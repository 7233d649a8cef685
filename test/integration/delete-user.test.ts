/**
 * Deleting a user, end to end: events and an identify through the real collector, Kafka and
 * consumer; the user counts; `deleteUser` (what `npm run delete-user` and the admin route run)
 * removes every row naming the user or its linked anonymous id, the rollups of those months are
 * rebuilt, and afterwards the user counts nowhere while the other users' numbers are unchanged.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../services/lib/logger.ts';
import { createRegistry } from '../../services/lib/metrics.ts';
import { DAY_MS } from '../../services/lib/time.ts';
import { buildApp } from '../../services/query/app.ts';
import { createClickHouseStore } from '../../services/query/clickhouse-store.ts';
import { deleteUser, deletionWhere } from '../../services/query/delete-user.ts';
import { scalar } from '../harness/consumer-process.ts';
import { type Pipeline, startPipeline, waitForNoLag } from '../harness/pipeline.ts';
import { post } from './collector-harness.ts';

const at = (daysAgo: number, hour = 12) =>
  new Date(Math.floor(Date.now() / DAY_MS) * DAY_MS - daysAgo * DAY_MS + hour * 3_600_000).toISOString();

let p: Pipeline;
beforeAll(async () => {
  // Consumers read identify_log (where a deletion tells them to drop cached profiles) at most
  // this often; short, so the event sent after the deletion below sees it.
  p = await startPipeline('delete_user', { consumerEnv: { CONTEXT_REFRESH_INTERVAL_MS: '100' } });
});
afterAll(async () => {
  await p?.close();
});

/** Daily active users per day from a rollup (the sketch path) and from the facts (exact). */
async function perDay(table: string): Promise<string> {
  const rs = await p.setup.db.client.query({
    query: `SELECT toString(toDate(hour)) AS d, uniqMerge(users) AS n FROM ${table} GROUP BY d ORDER BY d`,
    format: 'JSONEachRow',
  });
  return JSON.stringify(await rs.json());
}
async function exactPerDay(): Promise<string> {
  const rs = await p.setup.db.client.query({
    query: `SELECT toString(toDate(activity_timestamp)) AS d, uniqExact(user_key) AS n
            FROM fact_user_activity GROUP BY d ORDER BY d`,
    format: 'JSONEachRow',
  });
  return JSON.stringify(await rs.json());
}

describe('delete-user', () => {
  it('removes the user everywhere and rebuilds the numbers without them; others are unchanged', async () => {
    const url = p.collector.url;
    const events = [
      // Before signing up: anonymous, linked to the user by the identify below.
      { event_id: crypto.randomUUID(), anonymous_id: 'anon-victim', activity: 'view', timestamp: at(3) },
      {
        event_id: crypto.randomUUID(),
        user_id: 'victim',
        activity: 'view',
        feature: 'search',
        timestamp: at(2),
      },
      {
        event_id: crypto.randomUUID(),
        user_id: 'victim',
        activity: 'view',
        feature: 'search',
        timestamp: at(1),
      },
      ...[3, 2, 1].map((d) => ({
        event_id: crypto.randomUUID(),
        user_id: 'keeper',
        activity: 'view',
        feature: 'search',
        timestamp: at(d),
      })),
    ];
    expect(
      (
        await post(`${url}/v1/identify`, {
          user_id: 'victim',
          anonymous_id: 'anon-victim',
          traits: { segment: 'pro' },
        })
      ).status,
    ).toBe(200);
    expect((await post(`${url}/v1/events`, { events })).status).toBe(200);
    const client = p.setup.db.client;
    while ((await scalar(client, 'SELECT count() FROM fact_user_activity')) < events.length)
      await new Promise((r) => setTimeout(r, 100));
    while ((await scalar(client, "SELECT count() FROM identity_map WHERE user_id = 'victim'")) < 1)
      await new Promise((r) => setTimeout(r, 100));
    // Facts are visible while the insert still runs the other views (first-seen rows landing after
    // the deletion survived it once in CI): the consumer's commit follows the whole insert.
    expect((await waitForNoLag(p, 60_000)).lag).toBe(0);

    // Before: the victim counts on its three days (anonymous first, then as itself).
    const before = JSON.parse(await exactPerDay()) as { d: string; n: string }[];
    expect(before.map((r) => Number(r.n))).toEqual([2, 2, 2]);

    const report = await deleteUser({ client, userId: 'victim', requestedBy: 'test-suite' });
    expect(report.linkedIds).toBe(1);
    expect(report.rows.fact_user_activity).toBe(3);
    expect(report.months.length).toBeGreaterThan(0);

    // No row names the user or its linked id any more.
    for (const [table, cond] of Object.entries(deletionWhere('victim', ['anon-victim']))) {
      // identify_log keeps the `delete` rows that tell consumers to drop their caches.
      const where = table === 'identify_log' ? `(${cond}) AND kind != 'delete'` : cond;
      expect(await scalar(client, `SELECT count() FROM ${table} WHERE ${where}`), table).toBe(0);
    }
    expect(await scalar(client, "SELECT count() FROM identify_log WHERE kind = 'delete'")).toBe(2);
    // The numbers: exact from the facts, and every rollup agreeing with them; the keeper alone.
    const after = await exactPerDay();
    expect((JSON.parse(after) as { n: string }[]).map((r) => Number(r.n))).toEqual([1, 1, 1]);
    for (const rollup of [
      'rollup_users_hourly_total',
      'rollup_users_hourly_feature',
      'rollup_users_hourly_slice',
    ]) {
      expect(await perDay(rollup), rollup).toBe(after);
    }
    expect(await scalar(client, "SELECT count() FROM fact_user_activity WHERE user_id = 'keeper'")).toBe(3);

    // The deletion is recorded, without the id in clear.
    const rs = await client.query({ query: 'SELECT * FROM user_deletions', format: 'JSONEachRow' });
    const records = await rs.json<Record<string, unknown>>();
    expect(records).toHaveLength(1);
    expect(records[0]?.requested_by).toBe('test-suite');
    expect(String(records[0]?.user_key)).toBe(report.userKey);
    expect(JSON.stringify(records)).not.toContain('victim');

    // The running consumer had the victim's profile cached (its identify said segment "pro"): a
    // new event of the same id is not filled from it after the deletion.
    await new Promise((r) => setTimeout(r, 300));
    const later = crypto.randomUUID();
    expect(
      (await post(`${url}/v1/events`, { event_id: later, user_id: 'victim', activity: 'view' })).status,
    ).toBe(200);
    while ((await scalar(client, `SELECT count() FROM fact_user_activity WHERE event_id = '${later}'`)) < 1)
      await new Promise((r) => setTimeout(r, 100));
    const rs2 = await client.query({
      query: `SELECT segment FROM fact_user_activity WHERE event_id = '${later}'`,
      format: 'JSONEachRow',
    });
    expect(await rs2.json()).toEqual([{ segment: '' }]);
  }, 120_000);

  it('the admin route deletes with its own token only; read tokens and no token get 401', async () => {
    const client = p.setup.db.client;
    const id = crypto.randomUUID();
    expect(
      (
        await post(`${p.collector.url}/v1/events`, {
          event_id: id,
          user_id: 'victim-2',
          activity: 'view',
          timestamp: at(1),
        })
      ).status,
    ).toBe(200);
    while ((await scalar(client, `SELECT count() FROM fact_user_activity WHERE event_id = '${id}'`)) < 1)
      await new Promise((r) => setTimeout(r, 100));
    const dashboardDir = mkdtempSync(join(tmpdir(), 'delete-user-'));
    const app = await buildApp({
      logger: createLogger('delete-user-test', 'silent'),
      store: createClickHouseStore(client),
      registry: createRegistry('query'),
      limits: { maxRangeDays: 400 },
      tokens: ['read-token'],
      rateLimitPerMinute: 1_000,
      requestTimeoutMs: 10_000,
      clickhouseTimeoutMs: 20_000,
      dashboardDir,
      isShuttingDown: () => false,
      admin: {
        tokens: ['admin-token'],
        deleteUser: (userId, requestedBy) => deleteUser({ client, userId, requestedBy }),
      },
    });
    try {
      const del = (authorization?: string) =>
        app.inject({
          method: 'DELETE',
          url: '/v1/admin/users/victim-2',
          ...(authorization ? { headers: { authorization } } : {}),
        });
      expect((await del()).statusCode).toBe(401);
      expect((await del('Bearer read-token')).statusCode).toBe(401);
      expect(await scalar(client, "SELECT count() FROM fact_user_activity WHERE user_id = 'victim-2'")).toBe(
        1,
      );
      const ok = await del('Bearer admin-token');
      expect(ok.statusCode).toBe(200);
      expect(ok.json().rows.fact_user_activity).toBe(1);
      expect(await scalar(client, "SELECT count() FROM fact_user_activity WHERE user_id = 'victim-2'")).toBe(
        0,
      );
      expect(
        await scalar(client, "SELECT count() FROM user_deletions WHERE requested_by = 'admin token:0'"),
      ).toBe(1);
    } finally {
      await app.close();
      rmSync(dashboardDir, { recursive: true, force: true });
    }
  }, 120_000);

  it('takes any id as a literal: injection payloads delete nothing', async () => {
    const client = p.setup.db.client;
    const before = await scalar(client, 'SELECT count() FROM fact_user_activity');
    for (const payload of [
      "' OR 1=1 --",
      "keeper' OR '1'='1",
      "\\' OR 1=1 --",
      "x'); DROP TABLE fact_user_activity; --",
    ]) {
      const report = await deleteUser({ client, userId: payload, requestedBy: 'test-suite' });
      expect(
        Object.values(report.rows).every((n) => n === 0),
        payload,
      ).toBe(true);
    }
    expect(await scalar(client, 'SELECT count() FROM fact_user_activity')).toBe(before);
    expect(await scalar(client, "SELECT count() FROM fact_user_activity WHERE user_id = 'keeper'")).toBe(3);
  }, 60_000);
});
