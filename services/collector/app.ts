/**
 * buildApp(deps): the collector's HTTP app, reading no environment. main.ts builds the real
 * dependencies; tests build the same app with real Kafka and their own topics.
 */
import cors from '@fastify/cors';
import underPressure from '@fastify/under-pressure';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { AvroCodec } from '../lib/avro.ts';
import { COLLECTOR_ERRORS } from '../lib/error-codes.ts';
import type { HttpError } from '../lib/errors.ts';
import { serverTimeouts } from '../lib/http-server.ts';
import type { Logger } from '../lib/logger.ts';
import { serviceSkeleton } from '../lib/ops-http.ts';
import { type CollectorConfig, limitsOf } from './config.ts';
import type { GeoLookup } from './enrichment/geo.ts';
import { Enricher } from './enrichment/records.ts';
import { PublishAdmission } from './http/admission.ts';
import { authenticate, writeKeyOf } from './http/auth.ts';
import { bodyParsing } from './http/body.ts';
import { ERROR_SCHEMA } from './http/errors.ts';
import { WindowLimit } from './http/window-limit.ts';
import { WriteKeys } from './http/write-keys.ts';
import type { IntakeDeps } from './intake.ts';
import type { CollectorMetrics } from './metrics.ts';
import type { EventSink } from './publisher.ts';
import { amplitudeRoutes } from './routes/amplitude.ts';
import { registerSharedSchemas } from './routes/common.ts';
import { nativeRoutes } from './routes/native.ts';
import { posthogCaptureRoutes, posthogConfigRoutes } from './routes/posthog.ts';
import { rudderStackConfigRoutes } from './routes/rudderstack-config.ts';
import { segmentRoutes, segmentSettingsRoutes } from './routes/segment.ts';

export interface AppDeps {
  readonly config: CollectorConfig;
  readonly logger: Logger;
  readonly codec: AvroCodec;
  readonly sink: EventSink;
  readonly geo: GeoLookup | undefined;
  readonly metrics: CollectorMetrics;
  /** Readiness turns off as soon as shutdown starts, before the server stops listening. */
  readonly isShuttingDown?: () => boolean;
  /** Admission control state (http/admission.ts); default: one built from the config. */
  readonly admission?: PublishAdmission;
  /** The write keys in use (main.ts reloads them on SIGHUP); default: read from the config. */
  readonly writeKeys?: WriteKeys;
}

/** How long /readyz waits for Kafka's metadata before saying not ready. */
const READINESS_TIMEOUT_MS = 2_000;

/** Fastify's and its plugins' own error codes -> ours, so every rejection names a COLLECTOR_* code. */
const FASTIFY_CODES = {
  FST_ERR_CTP_BODY_TOO_LARGE: COLLECTOR_ERRORS.bodyTooLarge,
  FST_ERR_CTP_INVALID_MEDIA_TYPE: COLLECTOR_ERRORS.unsupportedMediaType,
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: COLLECTOR_ERRORS.bodyMalformed,
  FST_ERR_CTP_EMPTY_JSON_BODY: COLLECTOR_ERRORS.bodyMalformed,
  FST_UNDER_PRESSURE: COLLECTOR_ERRORS.overloaded,
  // A body that says gzip or deflate and is not (zlib's own codes, from the inflating stream).
  Z_DATA_ERROR: COLLECTOR_ERRORS.bodyMalformed,
  Z_BUF_ERROR: COLLECTOR_ERRORS.bodyMalformed,
};

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const c = deps.config;
  const limits = limitsOf(c);
  const app = Fastify({
    // pino's Logger is a FastifyBaseLogger; the cast only drops pino's wider generic parameters.
    loggerInstance: deps.logger as FastifyBaseLogger,
    // Per-request lines would dominate the log at intake volume; the metrics carry that, and
    // failures are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: limits.maxBatchBytes,
    trustProxy: c.TRUST_PROXY,
    ...serverTimeouts({
      requestTimeoutMs: c.REQUEST_TIMEOUT_MS,
      longestHandlingMs: c.KAFKA_PUBLISH_TIMEOUT_MS,
    }),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });
  app.decorateRequest('source', '');
  app.decorateRequest('scope', 'track');
  app.decorateRequest('writeKey', '');
  const writeKeys = deps.writeKeys ?? new WriteKeys({ fromEnv: c.WRITE_KEYS, file: c.WRITE_KEYS_FILE });
  const authenticated = (req: FastifyRequest, key: string | undefined): void => {
    const found = authenticate(key, writeKeys);
    // authenticate refused a missing key.
    req.writeKey = key as string;
    req.source = found.source;
    req.scope = found.scope;
  };
  app.decorateRequest('receivedAt', 0);
  registerSharedSchemas(app);
  app.addSchema({ $id: 'errorResponse', ...ERROR_SCHEMA });

  const admission =
    deps.admission ??
    new PublishAdmission({ targetMs: c.MAX_PUBLISH_BACKLOG_MS, intervalMs: c.PUBLISH_BACKLOG_INTERVAL_MS });
  app.addHook('onRequest', (req, _reply, done) => {
    req.receivedAt = Date.now();
    // Admission control: past its maximum the collector would queue work it cannot finish in time
    // (every accepted request waiting seconds for its acks). While publishes keep waiting past
    // the target (http/admission.ts), intake is refused at once, before its body is read or parsed,
    // so what is admitted stays fast and a refusal costs almost nothing. Every POST route
    // publishes; the rest are cheap reads.
    if (req.method === 'POST') {
      const backlogMs = deps.sink.backlogMs();
      if (admission.shed(backlogMs)) {
        deps.metrics.requestsShed.inc({ reason: 'publish_backlog' });
        done(
          COLLECTOR_ERRORS.overloaded(
            `publishing is ${backlogMs} ms behind (limit ${c.MAX_PUBLISH_BACKLOG_MS} ms)`,
          ),
        );
        return;
      }
    }
    done();
  });
  await serviceSkeleton(app, {
    service: 'collector',
    registry: deps.metrics.registry,
    errors: COLLECTOR_ERRORS,
    readiness: async () =>
      (await deps.sink.check(READINESS_TIMEOUT_MS))
        ? { ok: true }
        : { ok: false, reason: 'kafka unavailable' },
    isShuttingDown: deps.isShuttingDown ?? (() => false),
    requestTimeoutMs: c.REQUEST_TIMEOUT_MS,
    retryAfterSeconds: c.RETRY_AFTER_SECONDS,
    fastifyCodes: FASTIFY_CODES,
    // Shedding at 2x the maximum refuses thousands a second (counted in
    // collector_requests_shed_total): an error log with a stack for each was a log storm adding CPU
    // to an overloaded process.
    quiet: [COLLECTOR_ERRORS.overloaded],
    openapi: {
      info: {
        title: 'activity-pipeline collector',
        version: '1.0.0',
        description:
          'Event intake. A 2xx means every accepted event was acknowledged by Kafka (acks=all). Authenticate with a write key: `Authorization: Bearer <key>`, HTTP Basic (key as user name), or `writeKey` (Amplitude: `api_key`) in the body.',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer' },
          basic: { type: 'http', scheme: 'basic' },
        },
      },
      security: [{ bearer: [] }, { basic: [] }],
    },
  });

  await app.register(underPressure, {
    maxEventLoopDelay: c.MAX_EVENT_LOOP_DELAY_MS,
    maxHeapUsedBytes: c.MAX_HEAP_USED_BYTES,
    retryAfter: c.RETRY_AFTER_SECONDS,
    exposeStatusRoute: false,
  });
  await app.register(cors, {
    origin: c.CORS_ORIGINS.includes('*') ? true : [...c.CORS_ORIGINS],
    methods: ['GET', 'POST'],
    allowedHeaders: [
      'content-type',
      'content-encoding',
      'authorization',
      // Segment's browser SDK numbers its retries (a preflight refusing it would turn every retry
      // into a network error).
      'x-retry-count',
      // RudderStack's browser SDK (analytics-js v3) sends these with every upload; they are not read.
      'anonymousid',
      'sentat',
      'rsa-recovered',
      'rsa-retry-attempt',
      'rsa-retry-reason',
      'rsa-since-first-attempt',
      'rsa-since-last-attempt',
    ],
    exposedHeaders: ['retry-after'],
    maxAge: 86_400,
  });
  await app.register(bodyParsing);

  const intakeDeps: IntakeDeps = {
    codec: deps.codec,
    enricher: new Enricher({
      anonymizeIp: c.ANONYMIZE_IP,
      geo: deps.geo,
      geoAddress: c.GEO_LOOKUP_ADDRESS,
      fineGeo: c.GEO_FINE,
    }),
    sink: deps.sink,
    metrics: deps.metrics,
    limits,
  };
  // Two limits: per client address before anything of the body is read, so one client holding a
  // public browser key cannot spend the key's whole budget (nor make the collector parse bodies it
  // will refuse); per write key after parsing (a beacon's key is in its body).
  const perAddress = new WindowLimit({ max: c.RATE_LIMIT_PER_ADDRESS_MAX, windowMs: c.RATE_LIMIT_WINDOW_MS });
  const perKey = new WindowLimit({ max: c.RATE_LIMIT_MAX, windowMs: c.RATE_LIMIT_WINDOW_MS });
  const refuse = (reply: FastifyReply, waitMs: number, max: number, per: string): HttpError => {
    reply.header('retry-after', String(Math.ceil(waitMs / 1000)));
    return COLLECTOR_ERRORS.rateLimited(max, `${c.RATE_LIMIT_WINDOW_MS} ms${per}`);
  };
  // The authenticated routes (intake, and RudderStack's source config, which names the key's
  // source) share one encapsulated scope and its hooks, as the query service's /v1 does; the
  // SDKs' public configuration reads stay outside it.
  const authenticatedRoutes: FastifyPluginAsync = async (scope) => {
    // Callback hooks, not async ones: each async hook costs every request a promise and a
    // microtask, a share a single event notices (bench scenario 1, single events vs bare Fastify).
    scope.addHook('onRequest', (req, reply, done) => {
      const waitMs = perAddress.take(req.ip);
      if (waitMs > 0) {
        done(refuse(reply, waitMs, c.RATE_LIMIT_PER_ADDRESS_MAX, ' from one address'));
        return;
      }
      // A key in a header is checked before the body is read: an unknown key costs no parsing.
      const key = writeKeyOf({ headers: req.headers, body: undefined });
      try {
        if (key !== undefined) authenticated(req, key);
      } catch (err) {
        done(err as Error);
        return;
      }
      done();
    });
    // After parsing, so beacon requests (key in the body) are limited per key too.
    scope.addHook('preHandler', (req, reply, done) => {
      try {
        if (req.source === '') authenticated(req, writeKeyOf(req));
      } catch (err) {
        done(err as Error);
        return;
      }
      const bytes = Number(req.headers['content-length'] ?? 0);
      if (bytes > 0)
        deps.metrics.httpBodyBytes.observe({ route: req.routeOptions.url ?? 'unmatched' }, bytes);
      const waitMs = perKey.take(req.writeKey);
      if (waitMs > 0) {
        done(refuse(reply, waitMs, c.RATE_LIMIT_MAX, ' per write key'));
        return;
      }
      done();
    });

    const segment = { featureProperty: c.FEATURE_PROPERTY, featureMap: c.FEATURE_MAP };
    const maxBatchEvents = limits.maxBatchEvents;
    await scope.register(nativeRoutes, { intake: intakeDeps, maxBatchEvents, segment });
    await scope.register(segmentRoutes, { intake: intakeDeps, maxBatchEvents, segment });
    await scope.register(amplitudeRoutes, {
      intake: intakeDeps,
      amplitude: {
        featureProperty: c.AMPLITUDE_FEATURE_PROPERTY || c.FEATURE_PROPERTY,
        featureMap: c.FEATURE_MAP,
        userAgent: (ua) => intakeDeps.enricher.userAgent(ua),
      },
      maxBatchEvents,
    });
    await scope.register(rudderStackConfigRoutes);
    await scope.register(posthogCaptureRoutes, {
      intake: intakeDeps,
      posthog: {
        featureProperty: c.FEATURE_PROPERTY,
        featureMap: c.FEATURE_MAP,
        featureFrom: c.POSTHOG_FEATURE_FROM,
      },
      maxBatchEvents,
      maxBatchBytes: limits.maxBatchBytes,
    });
  };
  await app.register(authenticatedRoutes);
  await app.register(segmentSettingsRoutes);
  await app.register(posthogConfigRoutes);
  return app;
}
