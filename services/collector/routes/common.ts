/**
 * Pieces every intake route shares: response schemas, the request context, the status rule
 * (200 when anything was accepted, else 413/400 with the same per-event detail).
 */
import type { SwaggerTransform } from '@fastify/swagger';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { IDENTIFY_FIELDS } from '../../../schemas/native-api.ts';
import { CONTRACT } from '../../../schemas/records.ts';
import { COLLECTOR_ERRORS } from '../../lib/error-codes.ts';
import { errorBody } from '../../lib/errors.ts';
import type { RequestContext } from '../enrichment/records.ts';
import type { KeyScope } from '../http/write-keys.ts';
import type { IntakeResult } from '../intake.ts';
import { checkField } from '../validation/validate.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The write key the request authenticated with (set by authentication). */
    writeKey: string;
    /** Source name of the write key (set by authentication). */
    source: string;
    /** What the write key may send (http/write-keys.ts). */
    scope: KeyScope;
    /** Collector clock when the request arrived, ms since epoch. */
    receivedAt: number;
  }
}

export const SHARED_SCHEMAS = [
  {
    $id: 'rejections',
    type: 'array',
    items: {
      type: 'object',
      required: ['index', 'event_id', 'errors'],
      properties: {
        index: { type: 'integer', description: 'Position in the request (0 for a single event).' },
        event_id: { type: ['string', 'null'] },
        errors: { type: 'array', items: { type: 'string' }, description: '"<field>: <why>"' },
      },
    },
  },
  {
    $id: 'warnings',
    type: 'array',
    items: {
      type: 'object',
      required: ['index', 'event_id', 'warnings'],
      properties: {
        index: { type: 'integer' },
        event_id: { type: ['string', 'null'] },
        warnings: { type: 'array', items: { type: 'string' } },
      },
    },
  },
  {
    $id: 'intakeResult',
    type: 'object',
    required: ['accepted', 'rejected', 'warnings'],
    properties: {
      accepted: { type: 'integer', description: 'Events acknowledged by Kafka (acks=all).' },
      rejected: { $ref: 'rejections#' },
      warnings: { $ref: 'warnings#' },
    },
  },
] as const;

export const INTAKE_RESPONSES = {
  200: { $ref: 'intakeResult#' },
  '4xx': { $ref: 'errorResponse#' },
  '5xx': { $ref: 'errorResponse#' },
} as const;

/**
 * Route config putting `body` in the OpenAPI document without Fastify compiling it into a
 * validator. Intake bodies are checked by validation/ instead, per event: an event that breaks the
 * contract must cost only itself (the rest of its batch is accepted, it gets a per-event
 * rejection), and each whole-request problem has its own code and status (COLLECTOR_EMPTY_BATCH,
 * 413 COLLECTOR_TOO_MANY_EVENTS, ...), which a whole-body JSON-schema check cannot give.
 */
export function documentedBody(body: object): { swaggerTransform: SwaggerTransform } {
  return { swaggerTransform: ({ schema, url }) => ({ schema: { ...schema, body }, url }) };
}

export function registerSharedSchemas(app: FastifyInstance): void {
  for (const s of SHARED_SCHEMAS) app.addSchema(s);
}

/** Sends the intake result: 200 if any event was accepted, else 413 (an event too large) or 400. */
export function respond(reply: FastifyReply, r: IntakeResult): FastifyReply {
  const body = { accepted: r.accepted, rejected: r.rejected, warnings: r.warnings };
  if (r.accepted > 0) return reply.code(200).send(body);
  const e = r.tooLarge ? COLLECTOR_ERRORS.eventTooLarge() : COLLECTOR_ERRORS.noValidEvents();
  return reply.code(e.statusCode).send({ ...errorBody(e), ...body });
}

export function contextOf(
  req: FastifyRequest,
  sentAt: SentAt,
  overrides: { ip?: string | undefined; userAgent?: string | undefined } = {},
): RequestContext {
  const warnings = sentAt.warning === undefined ? [] : [sentAt.warning];
  // Well-formed: a relayed context.userAgent is any JSON string (see checkString in validate.ts).
  let userAgent = (overrides.userAgent ?? req.headers['user-agent'])?.toWellFormed();
  // Cut before it is copied into each event's record (a batch-level Segment context repeats it).
  if (userAgent !== undefined && userAgent.length > CONTRACT.maxUserAgentLength) {
    userAgent = userAgent.slice(0, CONTRACT.maxUserAgentLength);
    warnings.push(`userAgent: longer than ${CONTRACT.maxUserAgentLength} characters; truncated`);
  }
  return {
    source: req.source,
    receivedAt: req.receivedAt,
    sentAt: sentAt.ms,
    warnings,
    // A relayed client IP (Segment's context.ip) is trusted from server keys only: from a public
    // browser key it would let any page place its events anywhere on the map.
    ip: (req.scope === 'all' ? overrides.ip : undefined) ?? req.ip,
    scope: req.scope,
    userAgent,
  };
}

/** An envelope's sent time: absent, read, or ignored with a warning (out of the contract's range). */
export interface SentAt {
  readonly ms: number | undefined;
  readonly warning: string | undefined;
}

/**
 * Parses an envelope's sent time with the contract's rule for sent_at (spec.ts): unreadable is a
 * 400 for the request; well-formed but outside what the columns hold (0001-01-01, 1969) is ignored
 * with a warning on every event, which then gets no clock-skew correction.
 */
export function sentAtOf(raw: unknown, field: string): SentAt {
  if (raw === undefined || raw === null) return { ms: undefined, warning: undefined };
  const r = checkField(IDENTIFY_FIELDS.sent_at, raw, field);
  if (!r.ok) throw COLLECTOR_ERRORS.sentAtInvalid(r.problem.message);
  return { ms: r.value as number | undefined, warning: r.warning };
}

export function checkBatchSize(n: number, max: number, field: string): void {
  if (n === 0) throw COLLECTOR_ERRORS.emptyBatch(field);
  if (n > max) throw COLLECTOR_ERRORS.tooManyEvents(field, n, max);
}

/** A copy without the envelope-only fields, which are not event data (and a key must never be stored). */
export function withoutEnvelopeFields(v: unknown, fields: readonly string[]): unknown {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
  if (!fields.some((f) => Object.hasOwn(v, f))) return v;
  const copy: Record<string, unknown> = { ...(v as Record<string, unknown>) };
  for (const f of fields) delete copy[f];
  return copy;
}
