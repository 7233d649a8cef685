import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { slowRequest } from '../../test/fixtures/slow-client.ts';
import { createLogger } from '../lib/logger.ts';
import { createRegistry } from '../lib/metrics.ts';
import { buildApp, type QueryApp } from './app.ts';
import { ACTIVE_USERS_PARAMS, type ActiveUsersQuery, DIMENSIONS } from './params.ts';
import type { QueryStore } from './store.ts';

const dashboardDir = mkdtempSync(join(tmpdir(), 'query-app-'));
writeFileSync(join(dashboardDir, 'index.html'), '<!doctype html><title>dash</title>');

afterAll(() => rmSync(dashboardDir, { recursive: true, force: true }));

function fakeStore(seen: ActiveUsersQuery[], failPing = false): QueryStore {
  return {
    activeUsers: async (q) => {
      seen.push(q);
      return {
        rows: [
          {
            date: q.from,
            ...(q.groupBy.includes('country') ? { country: 'US' } : {}),
            dau: 3,
            wau: 5,
            mau: 8,
            dau_mau: 0.375,
            wau_mau: 0.625,
            new_users: 1,
            returning_users: 2,
          },
        ],
        source: 'rollup_users_hourly_slice',
        fromRollup: true,
        truncated: false,
      };
    },
    eventCount: async (q) => ({
      rows: [{ date: q.from, events: 42 }],
      source: 'fact_user_activity',
      fromRollup: false,
      truncated: false,
    }),
    dimensionValues: async (q) => ({
      dimension: q.dimension,
      values: [{ value: 'US', users: 10 }],
      truncated: false,
    }),
    ping: async () => {
      if (failPing) throw new Error('down');
    },
  };
}

function deps(
  tokens: readonly string[] = [],
  seen: ActiveUsersQuery[] = [],
  failPing = false,
  rateLimitPerMinute = 1000,
) {
  return {
    logger: createLogger('query-test', 'silent'),
    store: fakeStore(seen, failPing),
    registry: createRegistry('query'),
    limits: { maxRangeDays: 400 },
    tokens,
    rateLimitPerMinute,
    requestTimeoutMs: 10_000,
    clickhouseTimeoutMs: 20_000,
    dashboardDir,
    isShuttingDown: () => false,
    now: () => new Date('2025-03-10T12:00:00Z'),
  };
}

function app(...args: Parameters<typeof deps>): Promise<QueryApp> {
  return buildApp(deps(...args));
}

describe('query app', () => {
  let open: QueryApp;
  const seen: ActiveUsersQuery[] = [];

  beforeAll(async () => {
    open = await app([], seen);
  });
  afterAll(async () => {
    await open.close();
  });

  it('answers active users with rows and meta, passing repeated filters as OR lists', async () => {
    const res = await open.inject({
      url: '/v1/active-users?from=2025-03-01&to=2025-03-02&country=US&country=DE&group_by=country',
    });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.rows).toEqual([
      {
        date: '2025-03-01',
        country: 'US',
        dau: 3,
        wau: 5,
        mau: 8,
        dau_mau: 0.375,
        wau_mau: 0.625,
        new_users: 1,
        returning_users: 2,
      },
    ]);
    expect(body.meta).toMatchObject({
      from: '2025-03-01',
      to: '2025-03-02',
      tz: 'UTC',
      window: 'rolling',
      group_by: ['country'],
      filters: { country: ['US', 'DE'] },
      source: 'rollup_users_hourly_slice',
      from_rollup: true,
      truncated: false,
    });
    expect(seen.at(-1)?.filters).toEqual({ country: ['US', 'DE'] });
  });

  it('answers 400 with every problem and the valid names', async () => {
    const res = await open.inject({ url: '/v1/active-users?bogus=1&group_by=city' });
    expect(res.statusCode).toBe(400);
    const body = res.json();
    expect(body.code).toBe('QUERY_PARAM_INVALID');
    expect(body.problems).toHaveLength(2);
    expect(body.problems[0].valid).toEqual([...ACTIVE_USERS_PARAMS]);
    expect(body.problems[1].valid).toEqual([...DIMENSIONS]);
    expect(body.message).toContain('valid parameters:');
  });

  it('answers 400 for an unknown dimension name with the valid ones', async () => {
    const res = await open.inject({ url: '/v1/dimensions/city' });
    expect(res.statusCode).toBe(400);
    expect(res.json().problems[0].valid).toEqual([...DIMENSIONS]);
  });

  it('answers dimension values and event counts', async () => {
    const dims = await open.inject({ url: '/v1/dimensions/country?limit=5' });
    expect(dims.json()).toMatchObject({ dimension: 'country', values: [{ value: 'US', users: 10 }] });
    const events = await open.inject({ url: '/v1/events/count?from=2025-03-01&to=2025-03-01' });
    expect(events.json().rows).toEqual([{ date: '2025-03-01', events: 42 }]);
  });

  it('serves health, readiness, metrics, OpenAPI and the dashboard', async () => {
    expect((await open.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' });
    expect((await open.inject({ url: '/readyz' })).statusCode).toBe(200);
    const metrics = await open.inject({ url: '/metrics' });
    expect(metrics.body).toContain('query_http_requests_total{route="/v1/active-users"');
    expect(metrics.body).toContain('query_clickhouse_query_duration_seconds_bucket');
    const spec = (await open.inject({ url: '/docs/json' })).json();
    expect(Object.keys(spec.paths)).toEqual(
      expect.arrayContaining(['/v1/active-users', '/v1/events/count', '/v1/dimensions/{name}']),
    );
    const page = await open.inject({ url: '/' });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('<title>dash</title>');
    expect((await open.inject({ url: '/nope' })).statusCode).toBe(404);
  });

  it('is not ready when ClickHouse does not answer', async () => {
    const down = await app([], [], true);
    expect((await down.inject({ url: '/readyz' })).statusCode).toBe(503);
    await down.close();
  });
});

describe('query app with QUERY_TOKENS', () => {
  it('needs a bearer token for /v1 but not for health or the dashboard', async () => {
    const a = await app(['s3cret']);
    const without = await a.inject({ url: '/v1/active-users' });
    expect(without.statusCode).toBe(401);
    expect(without.json().code).toBe('QUERY_UNAUTHORIZED');
    expect(without.headers['www-authenticate']).toContain('Bearer');
    expect(
      (await a.inject({ url: '/v1/dimensions/country', headers: { authorization: 'Bearer nope' } }))
        .statusCode,
    ).toBe(401);
    expect(
      (await a.inject({ url: '/v1/active-users', headers: { authorization: 'Bearer s3cret' } })).statusCode,
    ).toBe(200);
    expect((await a.inject({ url: '/healthz' })).statusCode).toBe(200);
    expect((await a.inject({ url: '/' })).statusCode).toBe(200);
    await a.close();
  });
});

describe('query app rate limit', () => {
  it('answers 429 with Retry-After once the minute budget is spent, and leaves probes alone', async () => {
    const a = await app(['a', 'b'], [], false, 2);
    const call = (token: string) =>
      a.inject({ url: '/v1/dimensions/country', headers: { authorization: `Bearer ${token}` } });
    expect((await call('a')).statusCode).toBe(200);
    expect((await call('a')).statusCode).toBe(200);
    const limited = await call('a');
    expect(limited.statusCode).toBe(429);
    expect(limited.headers['retry-after']).toBeDefined();
    expect(limited.json().statusCode).toBe(429);
    // Another token has its own budget; health checks have none.
    expect((await call('b')).statusCode).toBe(200);
    for (let i = 0; i < 5; i++) expect((await a.inject({ url: '/healthz' })).statusCode).toBe(200);
    await a.close();
  });

  it('keys the budget by the token, not by how its header is spelled', async () => {
    const a = await app(['s3cret'], [], false, 2);
    const call = (authorization: string) =>
      a.inject({ url: '/v1/dimensions/country', headers: { authorization } });
    expect((await call('Bearer s3cret')).statusCode).toBe(200);
    expect((await call('bearer s3cret')).statusCode).toBe(200);
    expect((await call('BEARER   s3cret')).statusCode).toBe(429);
    await a.close();
  });

  it('with no tokens configured, keys by client address: a new header value buys no new budget', async () => {
    const a = await app([], [], false, 2);
    const call = (authorization: string) =>
      a.inject({ url: '/v1/dimensions/country', headers: { authorization } });
    expect((await call('Bearer one')).statusCode).toBe(200);
    expect((await call('Bearer two')).statusCode).toBe(200);
    expect((await call('Bearer three')).statusCode).toBe(429);
    // Another address has its own.
    const other = await a.inject({
      url: '/v1/dimensions/country',
      remoteAddress: '10.0.0.9',
      headers: { authorization: 'Bearer four' },
    });
    expect(other.statusCode).toBe(200);
    await a.close();
  });

  it('throttles failed attempts (401) per client address too', async () => {
    const a = await app(['s3cret'], [], false, 2);
    const guess = (n: number) =>
      a.inject({ url: '/v1/dimensions/country', headers: { authorization: `Bearer guess${n}` } });
    expect((await guess(1)).statusCode).toBe(401);
    expect((await guess(2)).statusCode).toBe(401);
    expect((await guess(3)).statusCode).toBe(429);
    // The token's own budget is untouched by the guesses from this address.
    expect(
      (await a.inject({ url: '/v1/dimensions/country', headers: { authorization: 'Bearer s3cret' } }))
        .statusCode,
    ).toBe(200);
    await a.close();
  });
});

describe('query app timeouts', () => {
  it('cuts off a client that sends its headers a byte at a time (slowloris)', async () => {
    const a = await buildApp({ ...deps([], [], false, 1000), requestTimeoutMs: 500 });
    await a.listen({ port: 0, host: '127.0.0.1' });
    try {
      const address = a.server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      const slow = await slowRequest(`http://127.0.0.1:${port}`, {
        method: 'GET',
        path: '/v1/dimensions/country',
        headers: { 'x-padding': 'y'.repeat(200) },
        slow: 'headers',
        everyMs: 50,
      });
      // ~11 s to send them all; the server gives up long before, answering 408 or closing.
      expect(slow.cutOff).toBe(true);
      if (slow.status !== undefined) expect(slow.status).toBe(408);
    } finally {
      await a.close();
    }
  }, 60_000);
});

describe('query app errors', () => {
  it('answers failures without a stack trace or a file path, a store failure as a plain 500', async () => {
    const failing = {
      ...fakeStore([]),
      activeUsers: async () => Promise.reject(new Error('boom at /work/x.ts:1')),
    };
    const a = await buildApp({ ...deps(), store: failing });
    const answers = await Promise.all([
      a.inject({ url: '/v1/active-users?from=2025-01-01&to=2025-01-31' }),
      a.inject({ url: '/v1/active-users?from=nope' }),
      a.inject({ url: "/v1/dimensions/country'--" }),
      a.inject({ url: '/nowhere' }),
      a.inject({ method: 'POST', url: '/v1/active-users', payload: 'x'.repeat(5_000) }),
    ]);
    expect(answers[0]?.statusCode).toBe(500);
    expect(answers[0]?.json().message).toBe('internal error');
    for (const res of answers)
      expect(res.body, res.body).not.toMatch(/\n\s+at |node_modules|\/work\/|file:\/\//);
    await a.close();
  });
});
