/**
 * The collector's configuration: one spec, read once by main.ts from the environment and validated
 * with every bad value listed. No secret has a default: WRITE_KEYS or WRITE_KEYS_FILE must be given
 * (the local stack's start script sets `local-dev-key:local`).
 */
import { bool, type ConfigOf, int, isLoopbackHost, list, oneOf, readConfig, str } from '../lib/config.ts';
import { DEFAULT_LANES } from '../lib/kafka-producer.ts';
import { DAY_MS } from '../lib/time.ts';
import { DEV_WRITE_KEY, parseWriteKeys, type WriteKey, type WriteKeys } from './http/write-keys.ts';
import { FEATURE_SOURCES, type FeatureSource } from './posthog/map.ts';

const splitList = (raw: string): string[] =>
  raw
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');

/** `event name=feature` pairs for Segment track events whose feature is not in their properties. */
export function parseFeatureMap(items: readonly string[]): ReadonlyMap<string, string> {
  const map = new Map<string, string>();
  for (const item of items) {
    const i = item.lastIndexOf('=');
    if (i <= 0 || i === item.length - 1) throw new Error('each entry must be event=feature');
    map.set(item.slice(0, i), item.slice(i + 1));
  }
  return map;
}

/** An ordered list of where PostHog events take their feature from (posthog/map.ts). */
export function parseFeatureSources(items: readonly string[]): readonly FeatureSource[] {
  for (const item of items)
    if (!(FEATURE_SOURCES as readonly string[]).includes(item))
      throw new Error(`${item} is not one of ${FEATURE_SOURCES.join(', ')}`);
  return items as readonly FeatureSource[];
}

const KB = 1024;

export const COLLECTOR_CONFIG = {
  PORT: int('HTTP port', 8080, 0, 65_535),
  HOST: str('listen address', '127.0.0.1'),
  INSECURE_DEV: bool('allow the documented dev write key on a non-loopback HOST', false),
  LOG_LEVEL: oneOf(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const,
    'pino level',
    'info',
  ),
  TRUST_PROXY: bool('take the client IP from X-Forwarded-For (behind a load balancer)', false),
  KAFKA_BROKERS: list('Kafka bootstrap brokers, host:port,...', ['127.0.0.1:9092']),
  KAFKA_CLIENT_ID: str('Kafka client id', 'collector'),
  KAFKA_TOPIC: str('topic for activity and identify records', 'user-activity.v1'),
  KAFKA_TOPIC_PARTITIONS: int('partitions when the collector creates the topic', 6, 1, 10_000),
  KAFKA_REPLICATION_FACTOR: int(
    'replication factor when the collector creates the topic (3 on a 3-broker cluster)',
    1,
    1,
    10,
  ),
  KAFKA_COMPRESSION: oneOf(['gzip', 'none'] as const, 'produce compression', 'gzip'),
  KAFKA_IDEMPOTENT: bool('idempotent producer (no duplicates from producer retries)', true),
  KAFKA_MAX_SEND_BYTES: int('max payload bytes of one produce request', 900 * KB, 1 * KB),
  KAFKA_MAX_QUEUED_BYTES: int('max bytes waiting for Kafka before requests get 503', 64 * KB * KB, 64 * KB),
  // More lanes help when acks=all waits on replicas (a cluster); one broker is CPU-bound (docs/KAFKA.md).
  KAFKA_PRODUCER_LANES: int(
    'idempotent producers sending in parallel, each owning a share of the partitions',
    DEFAULT_LANES,
    1,
    64,
  ),
  KAFKA_PUBLISH_TIMEOUT_MS: int('a request waits this long for acks=all before 503', 10_000, 100),
  KAFKA_RETRIES: int('kafkajs retries of one produce call', 2, 0, 20),
  WRITE_KEYS: {
    doc: 'write keys as key:source[:scope],... with scope all (default) or track (browser keys); no default secret',
    parse: (raw: string) => parseWriteKeys(splitList(raw)),
    fallback: new Map() as ReadonlyMap<string, WriteKey>,
    requiredUnless: 'WRITE_KEYS_FILE',
    secret: true,
  },
  WRITE_KEYS_FILE: str(
    'file of write keys (same entries, one per line), read again on SIGHUP and when it changes; replaces WRITE_KEYS',
    '',
  ),
  CORS_ORIGINS: list('allowed browser origins, or * for any', ['*']),
  MAX_EVENT_BYTES: int('max bytes of one event (JSON)', 32 * KB, 256),
  MAX_BATCH_BYTES: int('max decompressed request body bytes', 500 * KB, 1 * KB),
  MAX_BATCH_EVENTS: int('max events in one request', 2_500, 1),
  MAX_EVENT_DEPTH: int('max nesting depth inside an event', 10, 2, 100),
  MAX_EVENT_KEYS: int('max keys and array items inside an event', 1_000, 10),
  MAX_EVENT_AGE_DAYS: int('events older than this are rejected', 365, 1),
  MAX_EVENT_FUTURE_HOURS: int('events further in the future than this are rejected', 24, 0),
  MAX_CLOCK_SKEW_CORRECTION_HOURS: int('client clocks off by more than this are not corrected', 24 * 30, 0),
  ANONYMIZE_IP: bool('zero the host part of client IPs before publishing', true),
  GEOIP_ENABLED: bool('look up the location from the client IP', true),
  GEO_DATABASE: oneOf(
    ['country', 'city'],
    'IP database: country (8 MB of files, read into memory) or city (134 MB: adds region, city, coordinates)',
    'country',
  ),
  GEO_LOOKUP_ADDRESS: oneOf(
    ['full', 'anonymized'],
    'which client address the geo lookup reads: full (city-accurate) or anonymized (as stored)',
    'full',
  ),
  GEO_FINE: bool(
    'store city, postal code and coordinates (from the event or the IP); off: country and region only',
    false,
  ),
  FEATURE_PROPERTY: str('property that names the feature (Segment and PostHog events)', 'feature'),
  FEATURE_MAP: {
    doc: 'activity name -> feature for Segment and PostHog events without the property, as event=feature,...',
    parse: (raw: string) => parseFeatureMap(splitList(raw)),
    fallback: new Map<string, string>() as ReadonlyMap<string, string>,
  },
  AMPLITUDE_FEATURE_PROPERTY: str(
    'event property that names the feature in Amplitude events (e.g. "[Amplitude] Page Path" for the page path); empty: FEATURE_PROPERTY',
    '',
  ),
  POSTHOG_FEATURE_FROM: {
    doc: 'where PostHog events take their feature from, tried in order: property (FEATURE_PROPERTY), map (FEATURE_MAP), path (first segment of $pathname or $screen_name), event (the event name)',
    parse: (raw: string) => parseFeatureSources(splitList(raw)),
    fallback: ['property', 'map'] as readonly FeatureSource[],
  },
  REQUEST_TIMEOUT_MS: int('a request (headers and body) must arrive within this, else 408', 30_000, 100),
  RATE_LIMIT_MAX: int('requests per write key per window', 1_000, 1),
  RATE_LIMIT_PER_ADDRESS_MAX: int(
    'requests per client address per window, counted before the body is read (behind a proxy: TRUST_PROXY)',
    200,
    1,
  ),
  RATE_LIMIT_WINDOW_MS: int('rate limit window', 1_000, 100),
  MAX_EVENT_LOOP_DELAY_MS: int('shed load (503) above this event loop delay', 1_000, 10),
  MAX_PUBLISH_BACKLOG_MS: int(
    'publish backlog (age of the oldest unacknowledged publish) above which intake is shed (503 before reading the body), once it has lasted PUBLISH_BACKLOG_INTERVAL_MS',
    500,
    10,
  ),
  PUBLISH_BACKLOG_INTERVAL_MS: int(
    'how long the backlog must stay over MAX_PUBLISH_BACKLOG_MS before intake is shed (a shorter stall sheds nothing)',
    500,
    0,
    60_000,
  ),
  MAX_HEAP_USED_BYTES: int('shed load (503) above this heap use; 0 = off', 0, 0),
  RETRY_AFTER_SECONDS: int('Retry-After on 503', 5, 1, 3_600),
  SHUTDOWN_DEADLINE_MS: int('hard deadline for a graceful shutdown', 20_000, 1_000),
};

export type CollectorConfig = ConfigOf<typeof COLLECTOR_CONFIG>;

export function readCollectorConfig(env: Readonly<Record<string, string | undefined>>): CollectorConfig {
  return readConfig(COLLECTOR_CONFIG, env);
}

/**
 * Settings unsafe on an address other machines reach: the documented dev key accepts anyone's
 * events. Empty when none, or when INSECURE_DEV=1 says the exposure is meant.
 */
export function exposureProblems(c: CollectorConfig, keys: WriteKeys): string[] {
  if (c.INSECURE_DEV || isLoopbackHost(c.HOST) || !keys.hasDevKey()) return [];
  return [
    `WRITE_KEYS: the documented dev key ${DEV_WRITE_KEY} is accepted on HOST=${c.HOST}, reachable from other machines; set your own keys (or INSECURE_DEV=1 if this is a throwaway stack)`,
  ];
}

/** Derived, typed limits for the app (units converted once, here). */
export function limitsOf(c: CollectorConfig) {
  return {
    maxEventBytes: c.MAX_EVENT_BYTES,
    maxBatchBytes: c.MAX_BATCH_BYTES,
    maxBatchEvents: c.MAX_BATCH_EVENTS,
    maxDepth: c.MAX_EVENT_DEPTH,
    maxKeys: c.MAX_EVENT_KEYS,
    maxAgeMs: c.MAX_EVENT_AGE_DAYS * DAY_MS,
    maxFutureMs: c.MAX_EVENT_FUTURE_HOURS * 3_600_000,
    maxSkewCorrectionMs: c.MAX_CLOCK_SKEW_CORRECTION_HOURS * 3_600_000,
  };
}
