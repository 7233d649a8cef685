/**
 * Segment-compatible API (the HTTP Tracking API the official SDKs post to): /v1/batch and one path
 * per message type. Messages are mapped to native shapes (segment/map.ts) and take the same intake.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { COLLECTOR_ERRORS } from '../../lib/error-codes.ts';
import { type IntakeDeps, type IntakeItem, intake } from '../intake.ts';
import { mapSegment, messageContext, type SegmentOptions, type SegmentType } from '../segment/map.ts';
import { isPlainObject } from '../validation/validate.ts';
import {
  checkBatchSize,
  contextOf,
  documentedBody,
  INTAKE_RESPONSES,
  respond,
  type SentAt,
  sentAtOf,
} from './common.ts';

export interface SegmentRoutesOptions {
  readonly intake: IntakeDeps;
  readonly segment: SegmentOptions;
  readonly maxBatchEvents: number;
}

const MESSAGE_SCHEMA = {
  type: 'object',
  description: 'A Segment spec message (https://segment.com/docs/connections/spec/).',
  additionalProperties: true,
  properties: {
    type: { type: 'string', enum: ['track', 'page', 'screen', 'identify', 'group', 'alias'] },
    messageId: { type: 'string' },
    userId: { type: 'string' },
    anonymousId: { type: 'string' },
    event: { type: 'string' },
    properties: { type: 'object' },
    traits: { type: 'object' },
    context: { type: 'object' },
    timestamp: { type: 'string', format: 'date-time' },
    sentAt: { type: 'string', format: 'date-time' },
  },
} as const;

/** Builds intake items for Segment messages; batch-level context is a default for each message. */
function itemsFor(
  req: FastifyRequest,
  messages: readonly unknown[],
  pathType: SegmentType | undefined,
  batchSentAt: SentAt,
  batchContext: unknown,
  o: SegmentRoutesOptions,
): IntakeItem[] {
  return messages.map((raw): IntakeItem => {
    const msg =
      isPlainObject(raw) && isPlainObject(batchContext)
        ? { ...raw, context: messageContext(batchContext, raw.context) }
        : raw;
    const m = mapSegment(msg, pathType, o.segment);
    if (m.kind === 'error') return { kind: 'invalid', input: raw, message: m.message };
    let sentAt = batchSentAt;
    try {
      sentAt = m.context.sentAt === undefined ? batchSentAt : sentAtOf(m.context.sentAt, 'sentAt');
    } catch (err) {
      return { kind: 'invalid', input: raw, message: (err as Error).message };
    }
    const ctx = contextOf(req, sentAt, { ip: m.context.ip, userAgent: m.context.userAgent });
    if (m.kind === 'activity') return { kind: 'activity', input: m.event, ctx };
    if (m.kind === 'identify') return { kind: 'identify', input: m.identify, ctx };
    return { kind: 'identify', input: m.identify, ctx, alias: { previousId: m.previousId } };
  });
}

export function segmentHandler(o: SegmentRoutesOptions, pathType: SegmentType | undefined) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const body = req.body;
    if (!isPlainObject(body)) throw COLLECTOR_ERRORS.bodyInvalid('body: expected a JSON object');
    let messages: unknown[];
    let batchSentAt: SentAt = { ms: undefined, warning: undefined };
    if (pathType === undefined) {
      if (!Array.isArray(body.batch)) throw COLLECTOR_ERRORS.bodyInvalid('batch: expected an array');
      messages = body.batch;
      batchSentAt = sentAtOf(body.sentAt, 'sentAt');
    } else {
      messages = [body];
    }
    checkBatchSize(messages.length, o.maxBatchEvents, 'batch');
    if (batchSentAt.ms !== undefined)
      o.intake.metrics.clockSkew.observe(Math.abs(req.receivedAt - batchSentAt.ms) / 1000);
    const items = itemsFor(
      req,
      messages,
      pathType,
      batchSentAt,
      pathType === undefined ? body.context : undefined,
      o,
    );
    return respond(reply, await intake(items, 'segment', o.intake));
  };
}

/**
 * The paths analytics-next (Segment's browser SDK) posts to: `${apiHost}/<type's first letter>`,
 * and `${apiHost}/b` when batching. Segment's own apiHost is api.segment.io/v1, so with the
 * collector's `<host>/v1` these sit beside the long paths.
 */
const BROWSER_PATHS: Readonly<Record<string, SegmentType>> = {
  t: 'track',
  p: 'page',
  s: 'screen',
  g: 'group',
  a: 'alias',
  i: 'identify',
};

/**
 * The project settings analytics-next fetches from `${cdnURL}/v1/projects/<key>/settings`: its
 * Segment.io destination pointed back at this collector (as the browser reached it), no device-mode
 * destinations or remote plugins to load, and its own usage metrics (sent to api.segment.io) off.
 * So `cdnURL` is the one setting a browser SDK needs.
 */
function browserSettings(writeKey: string, apiHost: string, protocol: string) {
  return {
    integrations: { 'Segment.io': { apiKey: writeKey, apiHost, protocol } },
    metrics: { sampleRate: 0 },
    plan: {},
    middlewareSettings: {},
    enabledMiddleware: {},
    legacyVideoPluginsEnabled: false,
    remotePlugins: [],
  };
}

export const segmentRoutes: FastifyPluginAsync<SegmentRoutesOptions> = async (app, o) => {
  for (const path of ['/v1/batch', '/v1/b']) {
    app.post(
      path,
      {
        schema: { summary: 'Segment batch', tags: ['segment'], response: INTAKE_RESPONSES },
        config: documentedBody({
          type: 'object',
          required: ['batch'],
          properties: {
            batch: { type: 'array', items: MESSAGE_SCHEMA },
            sentAt: { type: 'string' },
            context: { type: 'object' },
          },
        }),
      },
      segmentHandler(o, undefined),
    );
  }
  // /v1/identify is shared with the native API (routes/native.ts dispatches on the body's shape).
  const paths: Array<[string, SegmentType]> = [
    ...(['track', 'page', 'screen', 'group', 'alias'] as const).map((t): [string, SegmentType] => [
      `/v1/${t}`,
      t,
    ]),
    ...Object.entries(BROWSER_PATHS).map(([letter, t]): [string, SegmentType] => [`/v1/${letter}`, t]),
  ];
  for (const [path, type] of paths) {
    app.post(
      path,
      {
        schema: { summary: `Segment ${type}`, tags: ['segment'], response: INTAKE_RESPONSES },
        config: documentedBody(MESSAGE_SCHEMA),
      },
      segmentHandler(o, type),
    );
  }
};

/**
 * The settings analytics-next loads: public (no write key checked), so apart from the intake routes
 * and their authentication.
 */
export const segmentSettingsRoutes: FastifyPluginAsync = async (app) => {
  // The same answer for any key (it tells nobody which keys exist); a bad key is refused when the
  // SDK posts events.
  app.get<{ Params: { writeKey: string } }>(
    '/v1/projects/:writeKey/settings',
    {
      schema: {
        summary: 'Segment browser SDK settings (analytics-next, with cdnURL set to the collector)',
        tags: ['segment'],
        response: { 200: { type: 'object', additionalProperties: true } },
      },
    },
    async (req) => browserSettings(req.params.writeKey, `${req.host}/v1`, req.protocol),
  );
};
