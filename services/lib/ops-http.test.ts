import Fastify, { type FastifyBaseLogger } from 'fastify';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { COLLECTOR_ERRORS, QUERY_ERRORS } from './error-codes.ts';
import { HttpError, PipelineError } from './errors.ts';
import { createRegistry } from './metrics.ts';
import { type CheckResult, serviceSkeleton, toHttpError } from './ops-http.ts';

const errors = QUERY_ERRORS;

async function app(
  o: { readiness?: () => CheckResult; health?: () => CheckResult; shuttingDown?: boolean } = {},
) {
  const registry = createRegistry('query');
  const a = Fastify({ loggerInstance: pino({ level: 'silent' }) as FastifyBaseLogger });
  await serviceSkeleton(a, {
    service: 'query',
    registry,
    errors,
    validation: errors.paramInvalid,
    readiness: o.readiness ?? (() => ({ ok: true })),
    ...(o.health ? { health: o.health } : {}),
    isShuttingDown: () => o.shuttingDown ?? false,
    requestTimeoutMs: 1_000,
    retryAfterSeconds: 7,
    fastifyCodes: { FST_UNDER_PRESSURE: errors.busy },
  });
  a.get('/throws/:what', async (req) => {
    const what = (req.params as { what: string }).what;
    if (what === 'registered') throw errors.tooExpensive(159);
    if (what === 'kafka') throw new PipelineError('KAFKA_UNAVAILABLE', 'no acks', { retriable: true });
    throw new Error('secret internals');
  });
  a.get(
    '/typed',
    { schema: { querystring: { type: 'object', properties: { n: { type: 'integer' } } } } },
    async () => 'ok',
  );
  return { a, registry };
}

describe('defineError', () => {
  it('formats its template, keeps code and status, and recognises its own errors', () => {
    const e = COLLECTOR_ERRORS.tooManyEvents('batch', 600, 500, { cause: 'c' });
    expect(e).toBeInstanceOf(HttpError);
    expect(e).toMatchObject({ code: 'COLLECTOR_TOO_MANY_EVENTS', statusCode: 413, cause: 'c' });
    expect(e.message).toBe('batch: 600 events; the limit is 500 per request');
    expect(COLLECTOR_ERRORS.tooManyEvents.is(e)).toBe(true);
    expect(COLLECTOR_ERRORS.emptyBatch.is(e)).toBe(false);
    expect(COLLECTOR_ERRORS.overloaded('x').retriable).toBe(true);
  });

  it('has one status per code across the whole registry', () => {
    const seen = new Map<string, number>();
    for (const defs of [COLLECTOR_ERRORS, QUERY_ERRORS]) {
      for (const d of Object.values(defs)) {
        expect(seen.get(d.code) ?? d.statusCode, d.code).toBe(d.statusCode);
        seen.set(d.code, d.statusCode);
      }
    }
    expect(seen.size).toBeGreaterThan(20);
  });
});

describe('toHttpError', () => {
  const o = { errors, fastifyCodes: { FST_ERR_CTP_BODY_TOO_LARGE: COLLECTOR_ERRORS.bodyTooLarge } };
  it('maps fastify codes, keeps retriable infrastructure codes as 503 and hides the rest as 500', () => {
    const tooLarge = Object.assign(new Error('too big'), {
      code: 'FST_ERR_CTP_BODY_TOO_LARGE',
      statusCode: 413,
    });
    expect(toHttpError(tooLarge, o)).toMatchObject({ code: 'COLLECTOR_BODY_TOO_LARGE', statusCode: 413 });
    const kafka = new PipelineError('KAFKA_UNAVAILABLE', 'no acks', { retriable: true });
    expect(toHttpError(kafka, o)).toMatchObject({
      code: 'KAFKA_UNAVAILABLE',
      statusCode: 503,
      retriable: true,
    });
    const unmapped = Object.assign(new Error('bad'), { code: 'FST_SOMETHING', statusCode: 406 });
    expect(toHttpError(unmapped, o)).toMatchObject({ code: 'QUERY_REQUEST_REFUSED', statusCode: 406 });
    expect(toHttpError(new Error('boom'), o)).toMatchObject({
      code: 'QUERY_INTERNAL',
      message: 'internal error',
    });
    // An inherited property name is not a mapping.
    const proto = Object.assign(new Error('x'), { code: 'constructor', statusCode: 500 });
    expect(toHttpError(proto, o).code).toBe('QUERY_INTERNAL');
  });
});

describe('serviceSkeleton', () => {
  it('answers every failure in one body with a registered code and the status text', async () => {
    const { a } = await app();
    const registered = await a.inject({ url: '/throws/registered' });
    expect(registered.statusCode).toBe(422);
    expect(registered.json()).toEqual({
      statusCode: 422,
      code: 'QUERY_TOO_EXPENSIVE',
      error: 'Unprocessable Entity',
      message: QUERY_ERRORS.tooExpensive(159).message,
    });
    const internal = await a.inject({ url: '/throws/other' });
    expect(internal.json()).toEqual({
      statusCode: 500,
      code: 'QUERY_INTERNAL',
      error: 'Internal Server Error',
      message: 'internal error',
    });
    const kafka = await a.inject({ url: '/throws/kafka' });
    expect(kafka.statusCode).toBe(503);
    expect(kafka.headers['retry-after']).toBe('7');
    const missing = await a.inject({ url: '/nowhere?x=1' });
    expect(missing.json()).toMatchObject({ statusCode: 404, code: 'QUERY_NOT_FOUND', error: 'Not Found' });
    expect(missing.json().message).toContain('GET /nowhere not found');
    const invalid = await a.inject({ url: '/typed?n=abc' });
    expect(invalid.json()).toMatchObject({
      statusCode: 400,
      code: 'QUERY_PARAM_INVALID',
      error: 'Bad Request',
    });
  });

  it('says ok/failed and ready/not ready, with the reason and detail', async () => {
    const down = await app({
      health: () => ({ ok: false, reason: 'consumer crashed' }),
      readiness: () => ({ ok: false, reason: 'kafka unavailable', detail: { paused: true } }),
    });
    const h = await down.a.inject({ url: '/healthz' });
    expect([h.statusCode, h.json()]).toEqual([503, { status: 'failed', reason: 'consumer crashed' }]);
    const r = await down.a.inject({ url: '/readyz' });
    expect([r.statusCode, r.json()]).toEqual([
      503,
      { status: 'not ready', reason: 'kafka unavailable', paused: true },
    ]);

    const up = await app();
    expect((await up.a.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' });
    expect((await up.a.inject({ url: '/readyz' })).json()).toEqual({ status: 'ready' });

    const closing = await app({ shuttingDown: true });
    const c = await closing.a.inject({ url: '/readyz' });
    expect([c.statusCode, c.json()]).toEqual([503, { status: 'not ready', reason: 'shutting down' }]);
    expect(c.headers.connection).toBe('close');
  });

  it('counts requests by route pattern, method and status_code', async () => {
    const { a, registry } = await app();
    await a.inject({ url: '/throws/registered' });
    await a.inject({ url: '/nowhere' });
    const text = await registry.metrics();
    expect(text).toContain('query_http_requests_total{route="/throws/:what",method="GET",status_code="422"');
    expect(text).toContain('query_http_requests_total{route="unmatched",method="GET",status_code="404"');
    expect(text).toMatch(
      /query_http_request_duration_seconds_count{[^}]*route="\/throws\/:what",method="GET"/,
    );
  });
});
