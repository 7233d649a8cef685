/**
 * What every service's HTTP server has, built one way: /healthz and /readyz with the same status
 * words, /metrics, request metrics with one label set, one error body with codes from
 * error-codes.ts, and `Connection: close` once shutdown starts. The collector and the query
 * service put it on their API server (serviceSkeleton); the consumer and the refresher, which have
 * no API, get a small server with nothing else (buildOpsHttp).
 */
import swagger, { type FastifyDynamicSwaggerOptions } from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyPluginAsync,
} from 'fastify';
import type { BaseErrors } from './error-codes.ts';
import { type ErrorDef, errorBody, HttpError, PipelineError } from './errors.ts';
import { bodyDeadline } from './http-server.ts';
import type { Logger } from './logger.ts';
import { Counter, Histogram, LATENCY_BUCKETS_SECONDS, type Registry } from './metrics.ts';

/** A health or readiness answer; `reason` says why not, `detail` is shown either way. */
export interface CheckResult {
  readonly ok: boolean;
  readonly reason?: string;
  readonly detail?: Readonly<Record<string, unknown>>;
}

export type Check = () => CheckResult | Promise<CheckResult>;

/** The words of /healthz and /readyz, the same in every service (probes and runbooks match them). */
export const STATUS_WORDS = {
  healthy: 'ok',
  unhealthy: 'failed',
  ready: 'ready',
  notReady: 'not ready',
} as const;

/** Written out, not built from the service name, so each metric name can be found by search. */
const HTTP_METRICS = {
  collector: {
    requests: 'collector_http_requests_total',
    duration: 'collector_http_request_duration_seconds',
  },
  query: { requests: 'query_http_requests_total', duration: 'query_http_request_duration_seconds' },
  consumer: {
    requests: 'consumer_http_requests_total',
    duration: 'consumer_http_request_duration_seconds',
  },
  refresher: {
    requests: 'refresher_http_requests_total',
    duration: 'refresher_http_request_duration_seconds',
  },
} as const;

export type ServiceName = keyof typeof HTTP_METRICS;

export interface SkeletonOptions {
  readonly service: ServiceName;
  readonly registry: Registry;
  readonly errors: BaseErrors;
  /** The process is alive and not failed (default: always). */
  readonly health?: Check;
  /** The service can do its work; asked only while it is not shutting down. */
  readonly readiness: Check;
  readonly isShuttingDown: () => boolean;
  /** A request's body must arrive within this after its headers. */
  readonly requestTimeoutMs: number;
  /** Retry-After (seconds) on a 503 and on any error that says a retry can succeed. */
  readonly retryAfterSeconds: number;
  /** Fastify's (or a plugin's) own error codes -> the service's, so every answer has one of its codes. */
  readonly fastifyCodes?: Readonly<Record<string, ErrorDef>>;
  /** The code of a request that fails the route's schema. */
  readonly validation?: ErrorDef<'%s'>;
  /** Refusals made on purpose and in volume (shedding): logged at debug, not as errors. */
  readonly quiet?: readonly ErrorDef[];
  /** The service's OpenAPI document (info, security), served at /docs/json with Swagger UI at /docs. */
  readonly openapi?: FastifyDynamicSwaggerOptions['openapi'];
}

const STATUS_SCHEMA = {
  type: 'object',
  required: ['status'],
  additionalProperties: true,
  properties: { status: { type: 'string' }, reason: { type: 'string' } },
} as const;

const answer = async (
  check: Check,
  words: { yes: string; no: string },
): Promise<{ code: 200 | 503; body: Record<string, unknown> }> => {
  const r = await check();
  const body = {
    status: r.ok ? words.yes : words.no,
    ...(r.reason === undefined ? {} : { reason: r.reason }),
  };
  return { code: r.ok ? 200 : 503, body: { ...r.detail, ...body } };
};

/** /healthz, /readyz and /metrics. Probes and scrapes log at warn only: they come every few seconds. */
export const opsRoutes: FastifyPluginAsync<
  Pick<SkeletonOptions, 'registry' | 'health' | 'readiness' | 'isShuttingDown'>
> = async (app, o) => {
  const health = o.health ?? (() => ({ ok: true }));
  const schema = (summary: string) => ({
    summary,
    tags: ['ops'],
    response: { 200: STATUS_SCHEMA, 503: STATUS_SCHEMA },
  });
  app.get(
    '/healthz',
    { schema: schema('Liveness: the process answers and has not failed'), logLevel: 'warn' },
    async (_req, reply) => {
      const a = await answer(health, { yes: STATUS_WORDS.healthy, no: STATUS_WORDS.unhealthy });
      return reply.code(a.code).send(a.body);
    },
  );
  app.get(
    '/readyz',
    { schema: schema('Readiness: the service can do its work'), logLevel: 'warn' },
    async (_req, reply) => {
      const check: Check = o.isShuttingDown() ? () => ({ ok: false, reason: 'shutting down' }) : o.readiness;
      const a = await answer(check, { yes: STATUS_WORDS.ready, no: STATUS_WORDS.notReady });
      return reply.code(a.code).send(a.body);
    },
  );
  app.get(
    '/metrics',
    { schema: { summary: 'Prometheus metrics', tags: ['ops'] }, logLevel: 'warn' },
    async (_req, reply) => reply.type(o.registry.contentType).send(await o.registry.metrics()),
  );
};

/**
 * The HttpError a failure is answered with: ours as they are; fastify's own mapped to the service's
 * codes; a retriable infrastructure error (Kafka did not acknowledge) 503 under its own code; any
 * other error 500 with nothing of its message (internal messages are not for clients).
 */
export function toHttpError(
  err: unknown,
  o: Pick<SkeletonOptions, 'errors' | 'fastifyCodes' | 'validation'>,
): HttpError {
  if (err instanceof HttpError) return err;
  const f = err as Partial<FastifyError>;
  const mapped =
    f.code !== undefined && o.fastifyCodes !== undefined && Object.hasOwn(o.fastifyCodes, f.code)
      ? o.fastifyCodes[f.code]
      : undefined;
  if (mapped !== undefined)
    return new HttpError(mapped.code, mapped.statusCode, f.message ?? '', { cause: err });
  if (f.validation !== undefined && o.validation !== undefined)
    return o.validation(f.message ?? '', { cause: err });
  if (err instanceof PipelineError) {
    return new HttpError(err.code, err.retriable ? 503 : 500, err.message, {
      retriable: err.retriable,
      cause: err,
    });
  }
  const status = typeof f.statusCode === 'number' ? f.statusCode : 500;
  if (status >= 400 && status < 500) {
    return new HttpError(o.errors.requestRefused.code, status, f.message ?? '', { cause: err });
  }
  return o.errors.internal({ cause: err });
}

/** Requests by route pattern (never the raw URL), method and status code; duration by route and method. */
export function requestMetrics(app: FastifyInstance, service: ServiceName, registry: Registry): void {
  const requests = new Counter({
    name: HTTP_METRICS[service].requests,
    help: 'HTTP requests by route pattern, method and status code.',
    labelNames: ['route', 'method', 'status_code'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: HTTP_METRICS[service].duration,
    help: 'HTTP request duration by route pattern and method, until the response is sent.',
    labelNames: ['route', 'method'],
    buckets: LATENCY_BUCKETS_SECONDS,
    registers: [registry],
  });
  // Callback hooks here and in serviceSkeleton: an async one costs every request a promise.
  app.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url ?? 'unmatched';
    requests.inc({ route, method: req.method, status_code: String(reply.statusCode) });
    duration.observe({ route, method: req.method }, reply.elapsedTime / 1000);
    done();
  });
}

/**
 * Installs the skeleton on a service's root Fastify instance, before its routes (the OpenAPI
 * document lists only the routes registered after it).
 */
export async function serviceSkeleton(app: FastifyInstance, o: SkeletonOptions): Promise<void> {
  const retryAfter = String(o.retryAfterSeconds);
  const quiet = new Set((o.quiet ?? []).map((d) => d.code));
  app.addHook('onRequest', bodyDeadline(o.requestTimeoutMs, o.errors.requestTimeout));
  requestMetrics(app, o.service, o.registry);
  // Keep-alive sockets would hold a closing server open until their idle timeout: once shutdown
  // starts, every response (in-flight ones included) tells the client to close its connection.
  app.addHook('onSend', (_req, reply, payload, done) => {
    if (o.isShuttingDown()) reply.header('connection', 'close');
    done(null, payload);
  });
  app.setErrorHandler((err, req, reply) => {
    const e = toHttpError(err, o);
    if (e.statusCode === 503 || e.retriable)
      reply.header('retry-after', reply.getHeader('retry-after') ?? retryAfter);
    if (quiet.has(e.code))
      req.log.debug({ route: req.routeOptions.url, reason: e.message }, 'request refused');
    else if (e.statusCode >= 500) req.log.error({ err, route: req.routeOptions.url }, 'request failed');
    return reply.code(e.statusCode).send(errorBody(e));
  });
  app.setNotFoundHandler((req, reply) => {
    const e = o.errors.notFound(req.method, req.url.split('?')[0] ?? '');
    return reply.code(e.statusCode).send(errorBody(e));
  });
  if (o.openapi !== undefined) {
    await app.register(swagger, { openapi: o.openapi });
    await app.register(swaggerUi, { routePrefix: '/docs' });
  }
  await app.register(opsRoutes, o);
}

export interface OpsHttpOptions
  extends Pick<
    SkeletonOptions,
    'service' | 'registry' | 'errors' | 'health' | 'readiness' | 'isShuttingDown'
  > {
  readonly logger: Logger;
}

/** The HTTP port of a service without an API of its own (consumer, refresher). */
export async function buildOpsHttp(o: OpsHttpOptions): Promise<FastifyInstance> {
  const app = Fastify({
    // pino's Logger is a FastifyBaseLogger; the cast only drops pino's wider generic parameters.
    loggerInstance: o.logger.child({ component: 'http' }) as FastifyBaseLogger,
    bodyLimit: 1_024,
  });
  await serviceSkeleton(app, { ...o, requestTimeoutMs: 10_000, retryAfterSeconds: 5 });
  return app;
}
