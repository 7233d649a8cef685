/**
 * PostHog-compatible capture API: the paths posthog-node (/batch/) and posthog-js (/e/, and
 * /i/v0/e/ when a project config says so) post to, mapped to native shapes (posthog/map.ts) and
 * taken through the same intake; plus the two configuration reads posthog-js makes at load
 * (/array/<token>/config[.js], /flags/), answered so that it asks for nothing the collector lacks.
 *
 * Status codes follow what both SDKs do with them: 200 only when events were accepted (posthog-js
 * retries any other 2xx); 5xx for everything worth retrying. posthog-js drops on every 4xx,
 * including 429, so a rate-limit refusal is answered 503 with its Retry-After here (posthog-node
 * retries both).
 */
import type {
  FastifyError,
  FastifyInstance,
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
} from 'fastify';
import { COLLECTOR_ERRORS } from '../../lib/error-codes.ts';
import { HttpError } from '../../lib/errors.ts';
import { writeKeyOf } from '../http/auth.ts';
import { type IntakeDeps, type IntakeItem, intake } from '../intake.ts';
import { decodeCaptureBody } from '../posthog/body.ts';
import { type Envelope, envelopeOf, mapPostHog, type PostHogOptions } from '../posthog/map.ts';
import {
  checkBatchSize,
  contextOf,
  documentedBody,
  INTAKE_RESPONSES,
  respond,
  type SentAt,
  sentAtOf,
} from './common.ts';

export interface PostHogRoutesOptions {
  readonly intake: IntakeDeps;
  readonly posthog: PostHogOptions;
  readonly maxBatchEvents: number;
  /** The decompressed body limit (a gzip-js body is inflated here, not by the app's body parsing). */
  readonly maxBatchBytes: number;
}

/** posthog-node posts to /batch/; posthog-js to /e/ (or a project config's endpoint, /i/v0/e/). */
const CAPTURE_PATHS = ['/batch/', '/e', '/e/', '/i/v0/e', '/i/v0/e/', '/capture', '/capture/'] as const;

/**
 * The project config posthog-js reads at load: gzip bodies, no feature flags to load, and every
 * product the collector does not take (recordings, surveys, heatmaps, web vitals, exception
 * autocapture, site apps) off, so the SDK sends only events.
 */
const REMOTE_CONFIG = {
  supportedCompression: ['gzip-js', 'base64'],
  hasFeatureFlags: false,
  autocapture_opt_out: false,
  autocaptureExceptions: false,
  captureDeadClicks: false,
  capturePerformance: false,
  heatmaps: false,
  sessionRecording: false,
  surveys: false,
  productTours: false,
  defaultIdentifiedOnly: true,
  siteApps: [],
} as const;

/** The answer to /flags/ (and the older /decide/): no flags, in both response versions' fields. */
const NO_FLAGS = {
  flags: {},
  featureFlags: {},
  featureFlagPayloads: {},
  errorsWhileComputingFlags: false,
} as const;

/** Constant JSON answers of the configuration reads (documented, not constrained). */
const CONFIG_RESPONSE = { 200: { type: 'object', additionalProperties: true } } as const;

const CAPTURE_BODY_SCHEMA = {
  description:
    'A PostHog capture body: {api_key, batch: [event], sent_at}, an array of events, or one event; JSON, gzip (Content-Encoding or ?compression=gzip-js), or a base64 form (?compression=base64).',
} as const;

interface CaptureQuery {
  compression?: string;
}

/** The capture routes' own body parsing: PostHog's compression modes, then its envelope. */
function registerCaptureParsing(app: FastifyInstance, o: PostHogRoutesOptions): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (req, body, done) => {
    try {
      const compression = (req.query as CaptureQuery).compression;
      done(null, decodeCaptureBody(body as Buffer, compression, o.maxBatchBytes));
    } catch (err) {
      done(err as HttpError, undefined);
    }
  });
  // The envelope replaces the body before authentication (the intake scope's preHandler), which then
  // finds PostHog's api_key as the body's writeKey (http/auth.ts).
  app.addHook('preValidation', async (req) => {
    const envelope = envelopeOf(req.body);
    if ('error' in envelope) throw COLLECTOR_ERRORS.bodyInvalid(envelope.error);
    req.body = envelope;
  });
  // posthog-js drops a request answered 408 or 429 (it retries only 5xx and network errors), so
  // these refusals, which ask for a retry, are answered 503 with their Retry-After (posthog-node
  // retries both alike).
  app.setErrorHandler((err: FastifyError, _req, reply) => {
    if (err.statusCode !== 408 && err.statusCode !== 429) throw err;
    reply.header('retry-after', reply.getHeader('retry-after') ?? '1');
    throw new HttpError(err.code, 503, err.message, { cause: err });
  });
}

function captureHandler(o: PostHogRoutesOptions) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const { events, sentAt: rawSentAt } = req.body as Envelope;
    checkBatchSize(events.length, o.maxBatchEvents, 'batch');
    const sentAt: SentAt = sentAtOf(rawSentAt, 'sent_at');
    if (sentAt.ms !== undefined)
      o.intake.metrics.clockSkew.observe(Math.abs(req.receivedAt - sentAt.ms) / 1000);
    // The key the request authenticated with (a header's, else the envelope's).
    const facts = { receivedAt: req.receivedAt, sentAtMs: sentAt.ms, key: writeKeyOf(req) };
    const items = events.map((raw): IntakeItem => {
      const m = mapPostHog(raw, o.posthog, facts);
      if (m.kind === 'error') return { kind: 'invalid', input: raw, message: m.message };
      const ctx = contextOf(req, sentAt, { ip: m.context.ip, userAgent: m.context.userAgent });
      if (m.kind === 'activity') return { kind: 'activity', input: m.event, ctx };
      if (m.kind === 'identify') return { kind: 'identify', input: m.identify, ctx };
      return { kind: 'identify', input: m.identify, ctx, alias: { previousId: m.previousId } };
    });
    return respond(reply, await intake(items, 'posthog', o.intake));
  };
}

/** A token reflected into JavaScript: JSON-quoted, with `<` escaped so it cannot close a tag. */
const jsString = (s: string): string => JSON.stringify(s).replace(/</g, '\\u003c');

/** Capture: its own body parsing (PostHog's compression modes), in a scope of its own. */
export const posthogCaptureRoutes: FastifyPluginAsync<PostHogRoutesOptions> = async (capture, o) => {
  registerCaptureParsing(capture, o);
  for (const path of CAPTURE_PATHS) {
    capture.post(
      path,
      {
        schema: {
          summary: 'PostHog capture (posthog-node, posthog-js)',
          tags: ['posthog'],
          response: INTAKE_RESPONSES,
        },
        config: documentedBody(CAPTURE_BODY_SCHEMA),
      },
      captureHandler(o),
    );
  }
};

/**
 * Configuration reads: constant answers, the same for any token (so they tell nobody which keys
 * exist), public like any SDK's project config. The flags request body is not needed, only read and
 * discarded.
 */
export const posthogConfigRoutes: FastifyPluginAsync = async (app) => {
  await app.register(async (config) => {
    config.removeAllContentTypeParsers();
    config.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, _body, done) => done(null, null));
    config.get<{ Params: { token: string } }>(
      '/array/:token/config',
      {
        schema: {
          summary: 'PostHog project config (posthog-js, at load)',
          tags: ['posthog'],
          response: CONFIG_RESPONSE,
        },
      },
      async (req) => ({ token: req.params.token, ...REMOTE_CONFIG }),
    );
    config.get<{ Params: { token: string } }>(
      '/array/:token/config.js',
      { schema: { summary: 'PostHog project config as a script (posthog-js, at load)', tags: ['posthog'] } },
      async (req, reply) => {
        const token = jsString(req.params.token);
        const config = JSON.stringify({ token: req.params.token, ...REMOTE_CONFIG }).replace(/</g, '\\u003c');
        return reply
          .type('application/javascript')
          .send(
            `(window._POSTHOG_REMOTE_CONFIG=window._POSTHOG_REMOTE_CONFIG||{})[${token}]={config:${config},siteApps:[]};`,
          );
      },
    );
    for (const path of ['/flags', '/flags/', '/decide', '/decide/']) {
      config.post(
        path,
        {
          schema: {
            summary: 'PostHog feature flags: none (posthog-js, posthog-node)',
            tags: ['posthog'],
            response: CONFIG_RESPONSE,
          },
        },
        async () => ({ ...NO_FLAGS, ...REMOTE_CONFIG }),
      );
    }
  });
};
