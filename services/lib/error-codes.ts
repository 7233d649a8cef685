/**
 * Every error code a service answers over HTTP, with its status and message template: one list a
 * client (and the READMEs) can rely on. A code never changes meaning or status once shipped;
 * add a new one instead.
 */
import { defineError } from './errors.ts';

/** The codes every HTTP server of a service needs from the skeleton (ops-http.ts). */
export interface BaseErrors {
  readonly notFound: ReturnType<typeof defineError<'%s %s not found'>>;
  readonly internal: ReturnType<typeof defineError<'internal error'>>;
  /** A request fastify's HTTP layer refused before any handler (its own status is kept). */
  readonly requestRefused: ReturnType<typeof defineError<'%s'>>;
  readonly requestTimeout: ReturnType<typeof defineError<'the request body did not arrive within %s ms'>>;
}

export const COLLECTOR_ERRORS = {
  notFound: defineError('COLLECTOR_NOT_FOUND', 404, '%s %s not found'),
  internal: defineError('COLLECTOR_INTERNAL', 500, 'internal error'),
  requestRefused: defineError('COLLECTOR_REQUEST_REFUSED', 400, '%s'),
  requestTimeout: defineError(
    'COLLECTOR_REQUEST_TIMEOUT',
    408,
    'the request body did not arrive within %s ms',
  ),
  unauthorized: defineError('COLLECTOR_UNAUTHORIZED', 401, '%s'),
  rateLimited: defineError('COLLECTOR_RATE_LIMITED', 429, 'rate limit of %s requests per %s exceeded'),
  overloaded: defineError('COLLECTOR_OVERLOADED', 503, '%s; retry later', { retriable: true }),
  bodyInvalid: defineError('COLLECTOR_BODY_INVALID', 400, '%s'),
  bodyMalformed: defineError('COLLECTOR_BODY_MALFORMED', 400, '%s'),
  bodyInvalidUtf8: defineError('COLLECTOR_BODY_INVALID_UTF8', 400, 'body is not valid UTF-8'),
  bodyTooLarge: defineError('COLLECTOR_BODY_TOO_LARGE', 413, '%s'),
  unsupportedMediaType: defineError('COLLECTOR_UNSUPPORTED_MEDIA_TYPE', 415, '%s'),
  unsupportedEncoding: defineError(
    'COLLECTOR_UNSUPPORTED_ENCODING',
    415,
    'Content-Encoding %s is not supported (gzip, deflate)',
  ),
  unsupportedCompression: defineError(
    'COLLECTOR_UNSUPPORTED_COMPRESSION',
    400,
    'compression %s is not supported (%s)',
  ),
  sentAtInvalid: defineError('COLLECTOR_SENT_AT_INVALID', 400, '%s'),
  emptyBatch: defineError('COLLECTOR_EMPTY_BATCH', 400, '%s: empty batch'),
  tooManyEvents: defineError('COLLECTOR_TOO_MANY_EVENTS', 413, '%s: %s events; the limit is %s per request'),
  noValidEvents: defineError('COLLECTOR_NO_VALID_EVENTS', 400, 'no event in the request is valid'),
  eventTooLarge: defineError(
    'COLLECTOR_EVENT_TOO_LARGE',
    413,
    'no event accepted; an event exceeds the size limit',
  ),
  /** Amplitude's all-or-nothing upload with some events refused (routes/amplitude.ts). */
  invalidEvents: defineError(
    'COLLECTOR_INVALID_EVENTS',
    400,
    'Invalid field values on %s of %s events; none were ingested (resend the others)',
  ),
} as const satisfies BaseErrors & Record<string, unknown>;

export const QUERY_ERRORS = {
  notFound: defineError('QUERY_NOT_FOUND', 404, '%s %s not found; see /docs'),
  internal: defineError('QUERY_INTERNAL', 500, 'internal error'),
  requestRefused: defineError('QUERY_REQUEST_REFUSED', 400, '%s'),
  requestTimeout: defineError('QUERY_REQUEST_TIMEOUT', 408, 'the request body did not arrive within %s ms'),
  paramInvalid: defineError('QUERY_PARAM_INVALID', 400, '%s'),
  unauthorized: defineError('QUERY_UNAUTHORIZED', 401, 'a valid bearer token is required (one of %s)'),
  busy: defineError('QUERY_BUSY', 429, "the analytics database's read %s; retry later", { retriable: true }),
  tooExpensive: defineError(
    'QUERY_TOO_EXPENSIVE',
    422,
    'the query hit a per-query limit (ClickHouse code %s); narrow the date range, filters or group_by',
  ),
  backendUnavailable: defineError(
    'QUERY_BACKEND_UNAVAILABLE',
    503,
    'the analytics database is not reachable',
    {
      retriable: true,
    },
  ),
  /** A failure ClickHouse itself calls passing (its retriable codes). */
  backendTransient: defineError(
    'QUERY_BACKEND_TRANSIENT',
    503,
    'the analytics query failed for now (ClickHouse code %s); retry later',
    { retriable: true },
  ),
  backendFailed: defineError('QUERY_BACKEND_FAILED', 500, 'the analytics query failed (ClickHouse code %s)'),
  /** The SQL builder refused a value the parameter checks should have stopped: a bug, never input. */
  unsafeSql: defineError('QUERY_UNSAFE_SQL', 500, '%s'),
} as const satisfies BaseErrors & Record<string, unknown>;

/** The ops port of the consumer: only its few routes, so only the base codes. */
export const CONSUMER_ERRORS = {
  notFound: defineError('CONSUMER_NOT_FOUND', 404, '%s %s not found'),
  internal: defineError('CONSUMER_INTERNAL', 500, 'internal error'),
  requestRefused: defineError('CONSUMER_REQUEST_REFUSED', 400, '%s'),
  requestTimeout: defineError(
    'CONSUMER_REQUEST_TIMEOUT',
    408,
    'the request body did not arrive within %s ms',
  ),
} as const satisfies BaseErrors;

export const REFRESHER_ERRORS = {
  notFound: defineError('REFRESHER_NOT_FOUND', 404, '%s %s not found'),
  internal: defineError('REFRESHER_INTERNAL', 500, 'internal error'),
  requestRefused: defineError('REFRESHER_REQUEST_REFUSED', 400, '%s'),
  requestTimeout: defineError(
    'REFRESHER_REQUEST_TIMEOUT',
    408,
    'the request body did not arrive within %s ms',
  ),
} as const satisfies BaseErrors;
