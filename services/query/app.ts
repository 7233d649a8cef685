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
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import { QUERY_ERRORS } from '../lib/error-codes.ts';
import { serverTimeouts } from '../lib/http-server.ts';
import type { Logger } from '../lib/logger.ts';
import { Histogram, LATENCY_BUCKETS_SECONDS, type Registry } from '../lib/metrics.ts';
import { serviceSkeleton } from '../lib/ops-http.ts';
import { identifyHook, requireAuthorized } from './auth.ts';
import type { Limits } from './params.ts';
import { apiRoutes } from './routes/api.ts';
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
  /** Directory holding the built dashboard (`npm run build:dashboard`). */
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
    // pino's Logger is a FastifyBaseLogger; the cast only drops pino's wider generic parameters.
    loggerInstance: deps.logger as FastifyBaseLogger,
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

  const storeDuration = new Histogram({
    name: 'query_clickhouse_query_duration_seconds',
    help: 'Time to answer one API call from ClickHouse, by operation and outcome (ok or error code).',
    labelNames: ['operation', 'outcome'],
    buckets: LATENCY_BUCKETS_SECONDS,
    registers: [deps.registry],
  });

  await serviceSkeleton(app, {
    service: 'query',
    registry: deps.registry,
    errors: QUERY_ERRORS,
    validation: QUERY_ERRORS.paramInvalid,
    // ClickHouse answers a trivial query as the service's own user: a wrong password or a missing
    // user shows as not ready.
    readiness: async () => {
      try {
        await deps.store.ping();
        return { ok: true };
      } catch (err) {
        deps.logger.warn({ err }, 'readiness: clickhouse does not answer');
        return { ok: false, reason: 'clickhouse does not answer' };
      }
    },
    isShuttingDown: deps.isShuttingDown,
    requestTimeoutMs: deps.requestTimeoutMs,
    retryAfterSeconds: 5,
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

  await app.register(fastifyRateLimit, {
    global: false,
    max: deps.rateLimitPerMinute,
    timeWindow: 60_000,
    // Per authenticated token (several users behind one proxy), else per client address: never
    // by the raw header, which a client could vary for a fresh budget (auth.ts).
    keyGenerator: (request) => request.principal,
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

  // Deleting a user (delete-user.ts) behind its own tokens, registered only when some
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
    // The bundle changes with every build; a browser must revalidate rather than keep an old one.
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

  return app;
}

export type QueryApp = Awaited<ReturnType<typeof buildApp>>;
