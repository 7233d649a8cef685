/**
 * Amplitude-compatible API: HTTP API v2 (/2/httpapi) and the Batch API (/batch), what
 * @amplitude/analytics-node and analytics-browser post to when `serverUrl` points here. Events are
 * mapped to native shapes (amplitude/map.ts) and take the same intake.
 *
 * Responses are Amplitude's, because the SDKs act on them (core's Destination reads the status from
 * the body's `code`, not the HTTP status line): 200 `{code, events_ingested, ...}`; 400 naming the
 * bad events by index (the SDK drops those and resends the rest, so a 400 ingests nothing: the rest
 * is accepted once, when it comes back); 400 "Invalid API key" (the SDK drops the batch) for the
 * collector's 401; 413 (it halves the batch), 429 and 5xx (it retries) as the collector decides.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { COLLECTOR_ERRORS } from '../../lib/error-codes.ts';
import { type AmplitudeOptions, mapAmplitude, rejectionFields } from '../amplitude/map.ts';
import { type IntakeDeps, type IntakeItem, intake } from '../intake.ts';
import { isPlainObject } from '../validation/validate.ts';
import { checkBatchSize, contextOf, documentedBody, sentAtOf } from './common.ts';

export interface AmplitudeRoutesOptions {
  readonly intake: IntakeDeps;
  readonly amplitude: AmplitudeOptions;
  readonly maxBatchEvents: number;
}

const INDICES_BY_FIELD = {
  type: 'object',
  additionalProperties: { type: 'array', items: { type: 'integer' } },
  description: 'Amplitude field name -> indices of the events it made invalid.',
} as const;

const RESPONSES = {
  200: {
    type: 'object',
    required: ['code', 'events_ingested', 'payload_size_bytes', 'server_upload_time'],
    properties: {
      code: { type: 'integer' },
      events_ingested: { type: 'integer', description: 'Events acknowledged by Kafka (acks=all).' },
      payload_size_bytes: { type: 'integer' },
      server_upload_time: { type: 'integer', description: 'ms since epoch.' },
      warnings: { $ref: 'warnings#' },
    },
  },
  '4xx': { $ref: 'amplitudeError#' },
  '5xx': { $ref: 'amplitudeError#' },
} as const;

export const AMPLITUDE_ERROR_SCHEMA = {
  $id: 'amplitudeError',
  type: 'object',
  required: ['code', 'error'],
  properties: {
    code: { type: 'integer', description: 'The HTTP status (the SDKs read this, not the status line).' },
    error: { type: 'string' },
    error_code: { type: 'string', description: 'Stable collector code, e.g. COLLECTOR_OVERLOADED.' },
    missing_field: { type: 'string' },
    events_with_invalid_fields: INDICES_BY_FIELD,
    events_with_missing_fields: INDICES_BY_FIELD,
    rejected: { $ref: 'rejections#' },
  },
} as const;

const EVENT_SCHEMA = {
  type: 'object',
  description: 'An Amplitude event (https://amplitude.com/docs/apis/analytics/http-v2).',
  additionalProperties: true,
  required: ['event_type'],
  properties: {
    event_type: { type: 'string', description: '"$identify" updates the profile from user_properties.' },
    user_id: { type: 'string' },
    device_id: { type: 'string' },
    insert_id: { type: 'string', description: 'Dedup key; becomes event_id.' },
    time: { type: 'integer', description: 'ms since epoch.' },
    session_id: { type: 'integer', description: 'Session start in ms; -1: none.' },
    event_properties: { type: 'object' },
    user_properties: { type: 'object' },
    ip: { type: 'string' },
    user_agent: { type: 'string' },
  },
} as const;

/** The collector's error body (app.ts's error handler) as Amplitude's servers word it. */
function amplitudeError(req: FastifyRequest, reply: FastifyReply, e: Record<string, unknown>) {
  const status = typeof e.statusCode === 'number' ? e.statusCode : reply.statusCode;
  if (status === 401) {
    // Amplitude answers a bad key with 400, which the SDKs take as final for the whole batch.
    void reply.code(400);
    const body = req.body;
    const given = isPlainObject(body) && typeof body.api_key === 'string' && body.api_key !== '';
    return given
      ? { code: 400, error: 'Invalid API key', error_code: e.code }
      : { code: 400, error: 'Request missing required field', missing_field: 'api_key', error_code: e.code };
  }
  return { code: status, error: e.message, error_code: e.code };
}

export const amplitudeRoutes: FastifyPluginAsync<AmplitudeRoutesOptions> = async (app, o) => {
  app.addSchema(AMPLITUDE_ERROR_SCHEMA);
  // Errors thrown on these routes (auth, rate limit, shedding, Kafka) keep the app's one error
  // handler, its status and logging; only their body is reworded. Our own 400 already has a
  // numeric `code`, the collector's error bodies a string one.
  app.addHook('preSerialization', async (req, reply, payload) =>
    reply.statusCode >= 400 && isPlainObject(payload) && typeof payload.code === 'string'
      ? amplitudeError(req, reply, payload)
      : payload,
  );

  const handler = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const body = req.body;
    if (!isPlainObject(body) || !Array.isArray(body.events)) {
      return reply.code(400).send({
        code: 400,
        error: 'Request missing required field',
        missing_field: 'events',
        error_code: COLLECTOR_ERRORS.bodyInvalid.code,
      });
    }
    const events: unknown[] = body.events;
    checkBatchSize(events.length, o.maxBatchEvents, 'events');
    const sentAt = sentAtOf(body.client_upload_time, 'client_upload_time');
    if (sentAt.ms !== undefined)
      o.intake.metrics.clockSkew.observe(Math.abs(req.receivedAt - sentAt.ms) / 1000);
    const requestUserAgent = req.headers['user-agent'];
    const refused = new Map<number, { field: string; missing: boolean }>();
    const items = events.map((raw, index): IntakeItem => {
      const m = mapAmplitude(raw, o.amplitude, requestUserAgent);
      if (m.kind === 'error') {
        refused.set(index, m);
        return { kind: 'invalid', input: raw, message: m.message };
      }
      const ctx = contextOf(req, sentAt, m.context);
      const withWarnings =
        m.warnings.length === 0 ? ctx : { ...ctx, warnings: [...(ctx.warnings ?? []), ...m.warnings] };
      return m.kind === 'activity'
        ? { kind: 'activity', input: m.event, ctx: withWarnings }
        : { kind: 'identify', input: m.identify, ctx: withWarnings };
    });
    const r = await intake(items, 'amplitude', o.intake, { allOrNothing: true });
    if (r.rejected.length === 0) {
      return reply.code(200).send({
        code: 200,
        events_ingested: r.accepted,
        payload_size_bytes: Number(req.headers['content-length']) || 0,
        server_upload_time: Date.now(),
        warnings: r.warnings,
      });
    }
    const refusal = COLLECTOR_ERRORS.invalidEvents(r.rejected.length, events.length);
    return reply.code(refusal.statusCode).send({
      code: refusal.statusCode,
      error: refusal.message,
      error_code: refusal.code,
      ...rejectionFields(r.rejected, refused),
      rejected: r.rejected,
    });
  };

  for (const [url, summary] of [
    ['/2/httpapi', 'Amplitude HTTP API v2 upload'],
    ['/batch', 'Amplitude Batch API upload'],
  ] as const) {
    app.post(
      url,
      {
        schema: { summary, tags: ['amplitude'], response: RESPONSES },
        config: documentedBody({
          type: 'object',
          required: ['api_key', 'events'],
          properties: {
            api_key: { type: 'string', description: 'The write key.' },
            events: { type: 'array', items: EVENT_SCHEMA },
            options: { type: 'object', description: 'Ignored (min_id_length).' },
            client_upload_time: {
              type: 'string',
              format: 'date-time',
              description: 'Client clock at upload (clock-skew correction).',
            },
          },
        }),
      },
      handler,
    );
  }
};
