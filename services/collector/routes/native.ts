/**
 * The native API: POST /v1/events (a batch or a single event) and POST /v1/identify (a profile
 * update; Segment-shaped bodies on the same path are handed to the Segment route's handler).
 */
import type { FastifyPluginAsync } from 'fastify';
import { EVENT_FIELDS, IDENTIFY_FIELDS, jsonSchema } from '../../../schemas/native-api.ts';
import { COLLECTOR_ERRORS } from '../../lib/error-codes.ts';
import { type IntakeDeps, type IntakeItem, intake } from '../intake.ts';
import type { SegmentOptions } from '../segment/map.ts';
import { isPlainObject } from '../validation/validate.ts';
import {
  checkBatchSize,
  contextOf,
  documentedBody,
  INTAKE_RESPONSES,
  respond,
  sentAtOf,
  withoutEnvelopeFields,
} from './common.ts';
import { segmentHandler } from './segment.ts';

export interface NativeRoutesOptions {
  readonly intake: IntakeDeps;
  readonly maxBatchEvents: number;
  /** For Segment-shaped bodies posted to /v1/identify (camelCase userId/anonymousId). */
  readonly segment: SegmentOptions;
}

const EVENT_SCHEMA = jsonSchema(
  EVENT_FIELDS,
  'One activity event. Unknown fields are accepted with a warning.',
);

export const nativeRoutes: FastifyPluginAsync<NativeRoutesOptions> = async (app, o) => {
  const segmentIdentify = segmentHandler(o, 'identify');
  app.post(
    '/v1/events',
    {
      schema: {
        summary: 'Send activity events (a batch, or one event)',
        tags: ['native'],
        response: INTAKE_RESPONSES,
      },
      config: documentedBody({
        oneOf: [
          {
            type: 'object',
            required: ['events'],
            properties: {
              events: { type: 'array', items: EVENT_SCHEMA },
              sent_at: { type: 'string', format: 'date-time', description: 'Client clock at send time.' },
              writeKey: {
                type: 'string',
                description: 'For navigator.sendBeacon, which cannot set headers.',
              },
            },
          },
          EVENT_SCHEMA,
        ],
      }),
    },
    async (req, reply) => {
      const body = req.body;
      if (!isPlainObject(body)) throw COLLECTOR_ERRORS.bodyInvalid('body: expected a JSON object');
      let events: unknown[];
      if (Object.hasOwn(body, 'events')) {
        if (!Array.isArray(body.events)) throw COLLECTOR_ERRORS.bodyInvalid('events: expected an array');
        events = body.events;
      } else {
        events = [body];
      }
      checkBatchSize(events.length, o.maxBatchEvents, 'events');
      const sentAt = sentAtOf(body.sent_at, 'sent_at');
      if (sentAt.ms !== undefined)
        o.intake.metrics.clockSkew.observe(Math.abs(req.receivedAt - sentAt.ms) / 1000);
      const ctx = contextOf(req, sentAt);
      const items: IntakeItem[] = events.map((e) => ({
        kind: 'activity',
        input: withoutEnvelopeFields(e, ['writeKey', 'api_key', 'sent_at']),
        ctx,
        sourceBytes: req.bodyBytes,
      }));
      return respond(reply, await intake(items, 'native', o.intake));
    },
  );

  app.post(
    '/v1/identify',
    {
      schema: {
        summary: 'Update a user profile (native body; a Segment identify body also works here)',
        tags: ['native', 'segment'],
        response: INTAKE_RESPONSES,
      },
      config: documentedBody(jsonSchema(IDENTIFY_FIELDS, 'A user-profile update.')),
    },
    async (req, reply) => {
      const body = req.body;
      if (!isPlainObject(body)) throw COLLECTOR_ERRORS.bodyInvalid('body: expected a JSON object');
      if (
        !Object.hasOwn(body, 'user_id') &&
        (Object.hasOwn(body, 'userId') || Object.hasOwn(body, 'anonymousId'))
      ) {
        return segmentIdentify(req, reply);
      }
      const sentAt = sentAtOf(body.sent_at, 'sent_at');
      const item: IntakeItem = {
        kind: 'identify',
        input: withoutEnvelopeFields(body, ['writeKey', 'api_key']),
        ctx: contextOf(req, sentAt),
        sourceBytes: req.bodyBytes,
      };
      return respond(reply, await intake([item], 'native', o.intake));
    },
  );
};
