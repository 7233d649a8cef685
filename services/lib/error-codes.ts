/**
 * Every error code of the pipeline, in one place: first the codes a service answers over HTTP, with
 * their status and message template (the list a client and the READMEs rely on), then the internal
 * codes (below). A code never changes meaning or status once shipped; add a new one instead.
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

/*
 * Internal codes: errors that are no HTTP answer of their own, thrown inside a service or a
 * clickhouse/ command, or carried by a dead letter. Operators meet them in logs, in a command's
 * exit message and in the consumer's DLQ header `dlq-error-code` (DEAD_LETTER_CODES). Source files
 * name a code only through these objects (`new PipelineError(AVRO_CODES.undecodable, ...)`):
 * error-codes.test.ts fails on a literal code under services/ or clickhouse/.
 */

/** services/lib/config.ts: the bad settings, one line each; a service exits 2 with them. */
export const CONFIG_CODES = { invalid: 'CONFIG_INVALID' } as const;

/** services/lib/avro.ts. */
export const AVRO_CODES = {
  /** A schema id (message header) or family this process has no schema for. */
  unknownSchema: 'AVRO_UNKNOWN_SCHEMA',
  /** A record to encode does not fit its family's newest schema: a validation gap, never retried. */
  invalidRecord: 'AVRO_INVALID_RECORD',
  undecodable: 'AVRO_UNDECODABLE',
} as const;

/** services/lib/kafka.ts (topic creation at start). */
export const KAFKA_CODES = {
  /** More copies asked for than the cluster has live brokers: a setting to fix, not an outage. */
  replicationFactorTooHigh: 'KAFKA_REPLICATION_FACTOR_TOO_HIGH',
} as const;

/** services/lib/kafka-producer.ts; all but `rejected` are worth retrying later. */
export const PRODUCER_CODES = {
  /** The producer's in-flight byte budget is spent: the collector answers 503. */
  overloaded: 'KAFKA_PRODUCER_OVERLOADED',
  /** No acknowledgement within the publish timeout. */
  timeout: 'KAFKA_PUBLISH_TIMEOUT',
  unavailable: 'KAFKA_UNAVAILABLE',
  /** Kafka refused the messages themselves (too large, corrupt, not authorized). */
  rejected: 'KAFKA_MESSAGE_REJECTED',
  /** publish() after close() began. */
  closed: 'KAFKA_PRODUCER_CLOSED',
} as const;

/** services/consumer. */
export const CONSUMER_CODES = {
  /** Shutdown stopped a write before ClickHouse acknowledged it: its offsets stay uncommitted. */
  sinkAborted: 'CONSUMER_SINK_ABORTED',
  /** ClickHouse's tables do not match the row builder (schema.ts): the migrations are not applied yet. */
  schemaOutdated: 'CONSUMER_SCHEMA_OUTDATED',
  /**
   * An activity row with neither user id nor anonymous id (ingest-row.ts). decode.ts dead-letters
   * such events first (CONSUMER_RECORD_INVALID), so the row builder meeting one is a bug.
   */
  ingestRowNoIdentity: 'INGEST_ROW_NO_IDENTITY',
} as const;

/**
 * What a poison message's dead letter carries in `dlq-error-code` (decode.ts), listed for
 * operators in services/consumer/README.md (error-codes.test.ts holds the two equal). Rows
 * ClickHouse refuses for their data carry `CLICKHOUSE_<n>` instead, n its error number.
 */
export const DEAD_LETTER_CODES = {
  /** A message with no value (a tombstone, or a producer bug). */
  emptyValue: 'CONSUMER_EMPTY_VALUE',
  /** No schema id header, so the value cannot be decoded. */
  schemaHeaderMissing: 'CONSUMER_SCHEMA_HEADER_MISSING',
  unknownSchema: AVRO_CODES.unknownSchema,
  undecodable: AVRO_CODES.undecodable,
  /** Decoded, but outside the contract: event_id not a UUID, no identity, empty name, time out of range. */
  recordInvalid: 'CONSUMER_RECORD_INVALID',
} as const;

export type DeadLetterCode =
  | (typeof DEAD_LETTER_CODES)[keyof typeof DEAD_LETTER_CODES]
  | `CLICKHOUSE_${number}`;

/** services/query/delete-user.ts (the admin route) and `npm run delete-user`. */
export const QUERY_CODES = {
  deleteUserBadId: 'DELETE_USER_BAD_ID',
  /** ClickHouse reports a deletion's mutation as failed (system.mutations latest_fail_reason). */
  deleteUserMutationFailed: 'DELETE_USER_MUTATION_FAILED',
} as const;

/** services/lib/datamodel (migrations, their cluster form, dim_dates, rebuild, retention). */
export const DATAMODEL_CODES = {
  migrationBadDatabase: 'MIGRATION_BAD_DATABASE',
  /** The client's default database is not the one migrated (migrations name no database). */
  migrationWrongDatabase: 'MIGRATION_WRONG_DATABASE',
  /** An applied migration file was edited: applied migrations are immutable, add a new one. */
  migrationChecksumMismatch: 'MIGRATION_CHECKSUM_MISMATCH',
  migrationDuplicateVersion: 'MIGRATION_DUPLICATE_VERSION',
  /** An ALTER adding more than one column: the runner's skip-if-present check sees one. */
  migrationAddColumns: 'MIGRATION_ADD_COLUMNS',
  /** A table the migrations create has no PLACEMENT in cluster.ts: a decision, not a default. */
  clusterUnplacedTable: 'CLUSTER_UNPLACED_TABLE',
  clusterBadName: 'CLUSTER_BAD_NAME',
  /** A statement the cluster transform has no cluster form for. */
  clusterUnsupportedStatement: 'CLUSTER_UNSUPPORTED_STATEMENT',
  dimDatesBadCountry: 'DIM_DATES_BAD_COUNTRY',
  rebuildBadRange: 'REBUILD_BAD_RANGE',
  /** A rollup column whose aggregate state the rebuild cannot compute from the facts. */
  rebuildUnknownState: 'REBUILD_UNKNOWN_STATE',
  /** Retention already dropped those months' facts: a rebuild would erase their rollups. */
  rebuildFactsGone: 'REBUILD_FACTS_GONE',
  retentionBadMonths: 'RETENTION_BAD_MONTHS',
} as const;

/** clickhouse/command.ts, shared by the operations commands. */
export const COMMAND_CODES = {
  /** CLICKHOUSE_DATABASE is not a plain identifier (commands build DDL with it). */
  badDatabase: 'CLICKHOUSE_BAD_DATABASE',
} as const;
