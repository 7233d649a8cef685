/**
 * The one path every API takes: validate each item, enrich the valid ones into Avro records,
 * publish them all at once and wait for Kafka's acks=all. Data problems come back as per-item
 * rejections and warnings; a Kafka failure throws (the route answers 503 and the sender retries
 * the whole request, which event_id makes safe).
 */

import { IDENTIFY_FIELDS } from '../../schemas/native-api.ts';
import type { AvroCodec } from '../lib/avro.ts';
import { PipelineError } from '../lib/errors.ts';
import type { OutgoingMessage } from '../lib/kafka-producer.ts';
import { contentEventId } from './enrichment/event-id.ts';
import type { Enricher, RequestContext } from './enrichment/records.ts';
import type { CollectorMetrics } from './metrics.ts';
import { type EventSink, type OutgoingRecord, toMessage } from './publisher.ts';
import {
  type Clock,
  checkField,
  type Limits,
  type Problem,
  validateEvent,
  validateIdentify,
} from './validation/validate.ts';

export type Api = 'native' | 'segment' | 'amplitude' | 'posthog';

/**
 * `sourceBytes`: the size of the request body `input` was parsed from, when `input` is that body or
 * a part of it as parsed (the native API; not the mapped events of the other APIs, which can be
 * larger than what was sent). A small body lets validation skip measuring each event.
 */
export type IntakeItem =
  | {
      readonly kind: 'activity';
      readonly input: unknown;
      readonly ctx: RequestContext;
      readonly sourceBytes?: number;
    }
  | {
      readonly kind: 'identify';
      readonly input: unknown;
      readonly ctx: RequestContext;
      readonly sourceBytes?: number;
      /** A Segment alias, with the earlier id as sent (required: checked here like user_id). */
      readonly alias?: { readonly previousId: unknown };
    }
  /** An item the API adapter already found invalid (e.g. an unknown Segment type). */
  | { readonly kind: 'invalid'; readonly input: unknown; readonly message: string };

export interface Rejection {
  readonly index: number;
  readonly event_id: string | null;
  readonly errors: string[];
}

export interface Warning {
  readonly index: number;
  readonly event_id: string | null;
  readonly warnings: string[];
}

export interface IntakeResult {
  readonly accepted: number;
  readonly rejected: Rejection[];
  readonly warnings: Warning[];
  /** True when nothing was accepted and some item was over the size limit (answer 413). */
  readonly tooLarge: boolean;
}

const TEST_ACCOUNT_IGNORED =
  'is_test_account: ignored (a track-only write key cannot mark test accounts; set it with a server key)';

export interface IntakeDeps {
  readonly codec: AvroCodec;
  readonly enricher: Enricher;
  readonly sink: EventSink;
  readonly metrics: CollectorMetrics;
  readonly limits: Limits;
}

function inputEventId(input: unknown): string | null {
  if (typeof input !== 'object' || input === null) return null;
  const id = (input as Record<string, unknown>).event_id;
  return typeof id === 'string' ? id.slice(0, 64) : null;
}

function clockOf(ctx: RequestContext): Clock {
  return { receivedAt: ctx.receivedAt, sentAt: ctx.sentAt };
}

export interface IntakeOptions {
  /**
   * Publish nothing when any item is rejected (its valid items are then neither published nor
   * counted as accepted). For APIs whose clients resend the rest of a request after a 400 that names
   * the bad events (Amplitude's SDKs): accepting the rest now would accept it twice.
   */
  readonly allOrNothing?: boolean;
}

export async function intake(
  items: readonly IntakeItem[],
  api: Api,
  deps: IntakeDeps,
  options: IntakeOptions = {},
): Promise<IntakeResult> {
  const records: OutgoingRecord[] = [];
  const messages: OutgoingMessage[] = [];
  const rejected: Rejection[] = [];
  const warnings: Warning[] = [];
  let tooLarge = false;
  let unknownFields = 0;
  const reject = (index: number, input: unknown, problems: readonly Problem[]): void => {
    for (const p of problems) if (p.reason === 'too_large') tooLarge = true;
    deps.metrics.eventsRejected.inc({ api, reason: problems[0]?.reason ?? 'invalid_field' });
    rejected.push({ index, event_id: inputEventId(input), errors: problems.map((p) => p.message) });
  };
  for (const [index, item] of items.entries()) {
    if (item.kind === 'invalid') {
      reject(index, item.input, [{ reason: 'invalid_field', message: item.message }]);
      continue;
    }
    let record: OutgoingRecord;
    let itemWarnings: readonly string[];
    // Hashing the content costs a JSON.stringify and a SHA-1 per event: only for events sent
    // without an id, and only once they passed validation.
    const derivedId = (given: string | undefined) =>
      given ?? contentEventId(item.ctx.source, item.input, item.ctx.sentAt);
    if (item.kind === 'activity') {
      const r = validateEvent(item.input, clockOf(item.ctx), deps.limits, item.sourceBytes);
      if (!r.ok) {
        reject(index, item.input, r.problems);
        continue;
      }
      let event = { ...r.value, event_id: derivedId(r.value.event_id) };
      itemWarnings = r.warnings;
      // A public (track-only) key cannot hide users from every metric by flagging them as tests.
      if (item.ctx.scope === 'track' && event.user.is_test_account === true) {
        event = { ...event, user: { ...event.user, is_test_account: false } };
        itemWarnings = [...itemWarnings, TEST_ACCOUNT_IGNORED];
      }
      record = { family: 'user_activity', record: deps.enricher.activity(event, item.ctx) };
      unknownFields += Object.keys(r.value.unknown).length;
    } else if (item.ctx.scope === 'track') {
      // Identify and alias rewrite profiles and identity links: not for keys shipped in browsers.
      const kind = item.alias === undefined ? 'identify' : 'alias';
      reject(index, item.input, [
        {
          reason: 'not_allowed_for_key',
          message: `${kind}: not allowed with a track-only write key (send it with a server key)`,
        },
      ]);
      continue;
    } else {
      const r = validateIdentify(item.input, clockOf(item.ctx), deps.limits, item.sourceBytes);
      if (!r.ok) {
        reject(index, item.input, r.problems);
        continue;
      }
      const identify = { ...r.value, event_id: derivedId(r.value.event_id) };
      if (item.alias !== undefined) {
        const previous =
          item.alias.previousId === undefined || item.alias.previousId === null
            ? undefined
            : checkField(IDENTIFY_FIELDS.user_id, item.alias.previousId, 'previousId');
        if (!previous?.ok) {
          const problem = previous?.problem ?? {
            reason: 'missing_field',
            message: 'previousId: required for alias',
          };
          reject(index, item.input, [problem]);
          continue;
        }
        record = {
          family: 'user_identify',
          record: deps.enricher.identify(identify, item.ctx, {
            kind: 'alias',
            previousId: previous.value as string,
          }),
        };
      } else {
        record = { family: 'user_identify', record: deps.enricher.identify(identify, item.ctx) };
      }
      itemWarnings = r.warnings;
    }
    // Encoded here, one event at a time: validation guarantees every record fits the schema
    // (contract.test.ts proves it field by field), but if a gap remains it costs this event a
    // rejection, never the whole request a 5xx.
    let message: OutgoingMessage;
    try {
      message = toMessage(deps.codec, record);
    } catch (err) {
      if (!(err instanceof PipelineError)) throw err;
      reject(index, item.input, [{ reason: 'not_encodable', message: `event: ${err.message}` }]);
      continue;
    }
    records.push(record);
    messages.push(message);
    const all = item.ctx.warnings?.length ? [...item.ctx.warnings, ...itemWarnings] : itemWarnings;
    if (all.length > 0) warnings.push({ index, event_id: record.record.event_id, warnings: [...all] });
  }
  if (options.allOrNothing === true && rejected.length > 0) {
    return { accepted: 0, rejected, warnings: [], tooLarge };
  }
  await deps.sink.publish(messages);
  if (unknownFields > 0) deps.metrics.unknownFields.inc({ api }, unknownFields);
  let activities = 0;
  let identifies = 0;
  let aliases = 0;
  let bots = 0;
  for (const r of records) {
    if (r.family === 'user_activity') {
      activities++;
      if (r.record.is_bot) bots++;
    } else if (r.record.kind === 'alias') aliases++;
    else identifies++;
  }
  if (activities > 0) deps.metrics.eventsAccepted.inc({ api, kind: 'activity' }, activities);
  if (identifies > 0) deps.metrics.eventsAccepted.inc({ api, kind: 'identify' }, identifies);
  if (aliases > 0) deps.metrics.eventsAccepted.inc({ api, kind: 'alias' }, aliases);
  if (bots > 0) deps.metrics.botEvents.inc(bots);
  return { accepted: records.length, rejected, warnings, tooLarge: tooLarge && records.length === 0 };
}
