/**
 * buildApp(deps): the query service's Fastify instance, with every dependency passed in and no
 * environment read (main.ts is the composition root; tests call this with real or fake stores).
 *
 *   GET /v1/active-users, /v1/events/count, /v1/dimensions/:name   read API (token when configured)
 *   GET /healthz, /readyz, /metrics                                    operations
 *   GET /docs (Swagger UI), /docs/json (OpenAPI)                       API documentation
 *   GET /                                                              the dashboard (static, bundled)
 */
import fastifyRateLimit from '@fastify/rate-limit';
import fastifyStatic from '@fastify/static';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import { bodyDeadline, serverTimeouts } from '../lib/http-server.ts';
import type { Logger } from '../lib/logger.ts';
import { Counter, Histogram, LATENCY_BUCKETS_SECONDS, type Registry } from '../lib/metrics.ts';
import { identifyHook, requireAuthorized } from './auth.ts';
import { QUERY_PARAM_INVALID, QueryError } from './errors.ts';
import type { Limits } from './params.ts';
import { apiRoutes } from './routes/api.ts';
import { healthRoutes } from './routes/health.ts';
import type { QueryStore } from './store.ts';

export interface AppDeps {
  readonly logger: Logger;
  readonly store: QueryStore;
  readonly registry: Registry;
  readonly limits: Limits;
  /** Bearer tokens for /v1; empty means open read access. */
  readonly tokens: readonly string[];
  /** Requests per minute per token (or per client IP without one) on /v1. */
  readonly rateLimitPerMinute: number;
  /** A request must arrive within this (REQUEST_TIMEOUT_MS). */
  readonly requestTimeoutMs: number;
  /** The longest a ClickHouse query may take (CLICKHOUSE_TIMEOUT_MS): sockets idle longer are cut. */
  readonly clickhouseTimeoutMs: number;
  /** The admin route (DELETE /v1/admin/users/:userId), when admin tokens are configured. */
  readonly admin?: {
    readonly tokens: readonly string[];
    readonly deleteUser: (userId: string, requestedBy: string) => Promise<unknown>;
  };
  /** Directory holding the built dashboard (./dashboard/build.ts). */
  readonly dashboardDir: string;
  /** Readiness goes false as soon as shutdown starts, before the listener closes. */
  readonly isShuttingDown: () => boolean;
  readonly now?: () => Date;
}

export const DASHBOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

export async function buildApp(deps: AppDeps) {
  const app = Fastify({
    loggerInstance: deps.logger,
    // Read-only service: no route takes a body.
    bodyLimit: 1024,
    ...serverTimeouts({
      requestTimeoutMs: deps.requestTimeoutMs,
      longestHandlingMs: deps.clickhouseTimeoutMs,
    }),
    routerOptions: { maxParamLength: 200 },
    // Querystring schemas say "a string, or an array when the key repeats" (routes/api.ts).
    ajv: { customOptions: { allowUnionTypes: true } },
  });

  app.addHook('onRequest', bodyDeadline(deps.requestTimeoutMs, 'QUERY_REQUEST_TIMEOUT'));

  const requests = new Counter({
    name: 'query_http_requests_total',
    help: 'HTTP requests by route, method and status code.',
    labelNames: ['route', 'method', 'status_code'],
    registers: [deps.registry],
  });
  const duration = new Histogram({
    name: 'query_http_request_duration_seconds',
    help: 'HTTP request duration by route.',
    labelNames: ['route'],
    buckets: LATENCY_BUCKETS_SECONDS,
    registers: [deps.registry],
  });
  const storeDuration = new Histogram({
    name: 'query_clickhouse_query_duration_seconds',
    help: 'Time to answer one API call from ClickHouse, by operation and outcome (ok or error code).',
    labelNames: ['operation', 'outcome'],
    buckets: LATENCY_BUCKETS_SECONDS,
    registers: [deps.registry],
  });

  app.addHook('onResponse', async (request, reply) => {
    // The route pattern, never the raw URL, so label values stay a fixed set.
    const route = request.routeOptions.url ?? 'unmatched';
    requests.inc({ route, method: request.method, status_code: String(reply.statusCode) });
    duration.observe({ route }, reply.elapsedTime / 1000);
  });

  app.setErrorHandler((err: FastifyError | QueryError, request, reply) => {
    if (err instanceof QueryError) {
      if (err.statusCode >= 500) request.log.error({ err }, 'query failed');
      if (err.retriable) reply.header('retry-after', '5');
      return reply.code(err.statusCode).send({
        statusCode: err.statusCode,
        code: err.code,
        error: err.name,
        message: err.message,
        problems: err.problems,
      });
    }
    const status = err.statusCode ?? 500;
    if (status >= 500) request.log.error({ err }, 'request failed');
    return reply.code(status).send({
      statusCode: status,
      code: err.validation ? QUERY_PARAM_INVALID : (err.code ?? 'QUERY_INTERNAL'),
      error: status >= 500 ? 'Internal Server Error' : err.name,
      // Internal messages are not for clients.
      message: status >= 500 ? 'internal error' : err.message,
      problems: [],
    });
  });

  await app.register(fastifySwagger, {
    openapi: {
      info: {
        title: 'activity-pipeline query API',
        description:
          'DAU / WAU / MAU, stickiness, new and returning users and event counts for any slice, from ClickHouse rollups.',
        version: '1',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: deps.tokens.length > 0 ? [{ bearer: [] }] : [],
    },
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });

  await app.register(fastifyRateLimit, {
    global: false,
    max: deps.rateLimitPerMinute,
    timeWindow: 60_000,
    // Per authenticated token (several users behind one proxy), else per client address: never
    // by the raw header, which a client could vary for a fresh budget (auth.ts).
    keyGenerator: (request) => request.principal,
  });

  await app.register(healthRoutes, {
    registry: deps.registry,
    ping: deps.store.ping,
    isShuttingDown: deps.isShuttingDown,
  });

  /** Who the request is, its rate limit, then its 401: failed attempts spend their budget too. */
  const guard = (
    scope: FastifyInstance,
    tokens: readonly string[],
    setting: 'QUERY_TOKENS' | 'QUERY_ADMIN_TOKENS',
  ): void => {
    scope.decorateRequest('principal', '');
    scope.decorateRequest('authorized', false);
    scope.addHook('onRequest', identifyHook(tokens));
    scope.addHook('onRequest', scope.rateLimit());
    scope.addHook('onRequest', requireAuthorized(setting));
  };

  // Auth and rate limit apply to the read API only, so probes, scrapes and the page stay reachable.
  const v1: FastifyPluginAsync = async (scope) => {
    guard(scope, deps.tokens, 'QUERY_TOKENS');
    await scope.register(apiRoutes, {
      store: deps.store,
      limits: deps.limits,
      now: deps.now ?? (() => new Date()),
      storeDuration,
    });
  };
  await app.register(v1);

  // Deleting a user (clickhouse/delete-user.ts) behind its own tokens, registered only when some
  // are configured: an admin route must never fall back to "no tokens, open".
  const admin = deps.admin;
  if (admin && admin.tokens.length > 0) {
    const adminRoutes: FastifyPluginAsync = async (scope) => {
      guard(scope, admin.tokens, 'QUERY_ADMIN_TOKENS');
      scope.delete(
        '/v1/admin/users/:userId',
        {
          schema: {
            summary: 'Delete a user: their rows everywhere, and the rollups of their months rebuilt',
            tags: ['admin'],
            params: { type: 'object', properties: { userId: { type: 'string', minLength: 1 } } },
          },
        },
        async (request) => {
          const { userId } = request.params as { userId: string };
          return admin.deleteUser(userId, `admin ${request.principal}`);
        },
      );
    };
    await app.register(adminRoutes);
  }

  await app.register(fastifyStatic, {
    root: deps.dashboardDir,
    prefix: '/',
    index: 'index.html',
    // The bundle is rebuilt at start; a browser must revalidate rather than keep an old one.
    cacheControl: true,
    maxAge: 0,
    // Routes for the built files only (listed at start), so any other path gets the JSON 404
    // below instead of a file-system lookup.
    wildcard: false,
    // The page loads nothing but its own bundle (no CDN, no inline script or style): a policy
    // that allows only that turns an injected script or a foreign request into a refusal.
    setHeaders: (reply) => {
      reply.header('content-security-policy', DASHBOARD_CSP);
      reply.header('x-content-type-options', 'nosniff');
      reply.header('referrer-policy', 'no-referrer');
    },
  });

  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({
      statusCode: 404,
      code: 'QUERY_NOT_FOUND',
      error: 'Not Found',
      message: `no route ${request.method} ${request.url.split('?')[0]}; see /docs`,
      problems: [],
    }),
  );

  return app;
}

export type QueryApp = Awaited<ReturnType<typeof buildApp>>;
