/**
 * A collector under test: the real app (buildApp) with a real producer on its own topic, listening
 * on a free port, plus a reader that consumes the topic from the beginning and decodes every
 * message, so tests assert on what actually landed in Kafka.
 */
import type { FastifyInstance, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { buildApp } from '../../services/collector/app.ts';
import { readCollectorConfig } from '../../services/collector/config.ts';
import {
  type GeoDatabase,
  type GeoLookup,
  geoFiles,
  openGeo,
} from '../../services/collector/enrichment/geo.ts';
import {
  type CollectorMetrics,
  createCollectorMetrics,
  producerMetrics,
} from '../../services/collector/metrics.ts';
import type { EventSink } from '../../services/collector/publisher.ts';
import { AvroCodec, SCHEMA_HEADER } from '../../services/lib/avro.ts';
import { COLLECTOR_ERRORS, PRODUCER_CODES } from '../../services/lib/error-codes.ts';
import { PipelineError } from '../../services/lib/errors.ts';
import { createKafka, type Kafka } from '../../services/lib/kafka.ts';
import { BatchingProducer } from '../../services/lib/kafka-producer.ts';
import { createLogger } from '../../services/lib/logger.ts';
import { uniqueName } from '../harness/services.ts';

export const WRITE_KEY = 'test-key';
export const SOURCE = 'test-source';
/** A track-only key (what a browser ships): activities only (services/collector/http/write-keys.ts). */
export const BROWSER_KEY = 'browser-key';
export const codec = new AvroCodec();

const geo = new Map<GeoDatabase, Promise<GeoLookup>>();
/** The city database is 134 MB in memory: one copy per test file. */
export function sharedGeo(database: GeoDatabase): Promise<GeoLookup> {
  let g = geo.get(database);
  if (g === undefined) {
    g = openGeo(geoFiles(database));
    geo.set(database, g);
  }
  return g;
}

export interface Decoded {
  readonly key: string;
  readonly schema: string;
  readonly partition: number;
  readonly value: Record<string, unknown>;
}

export interface TopicReader {
  readonly messages: Decoded[];
  /** Resolves when `predicate` holds for the messages read so far (polls; bounded by the test timeout). */
  readonly waitFor: (predicate: (m: readonly Decoded[]) => boolean) => Promise<readonly Decoded[]>;
  readonly stop: () => Promise<void>;
}

export async function readTopic(kafka: Kafka, topic: string): Promise<TopicReader> {
  const consumer = kafka.consumer({
    groupId: uniqueName('collector-reader'),
    sessionTimeout: 10_000,
    heartbeatInterval: 1_000,
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const messages: Decoded[] = [];
  await consumer.run({
    eachMessage: async ({ message, partition }) => {
      const schema = message.headers?.[SCHEMA_HEADER]?.toString() ?? '';
      messages.push({
        key: message.key?.toString() ?? '',
        schema,
        partition,
        value: codec.decode(schema, message.value as Buffer).value,
      });
    },
  });
  return {
    messages,
    waitFor: async (predicate) => {
      while (!predicate(messages)) await new Promise((r) => setTimeout(r, 50));
      return messages;
    },
    stop: () => consumer.disconnect(),
  };
}

export interface TestCollector {
  readonly app: FastifyInstance;
  readonly url: string;
  readonly topic: string;
  readonly kafka: Kafka;
  readonly producer: BatchingProducer;
  readonly metrics: CollectorMetrics;
  readonly close: () => Promise<void>;
}

/**
 * The collector's overload answer (503 + Retry-After) to the next POST on each armed path, once,
 * and POSTs counted per path: `startCollector(..., { onRequest: f.hook })`, then
 * `f.paths.add('/2/httpapi')` before the SDK sends.
 */
export class FailOncePaths {
  readonly paths = new Set<string>();
  readonly posts = new Map<string, number>();

  readonly hook = async (req: FastifyRequest): Promise<void> => {
    if (req.method !== 'POST') return;
    this.posts.set(req.url, (this.posts.get(req.url) ?? 0) + 1);
    if (this.paths.delete(req.url))
      throw COLLECTOR_ERRORS.overloaded('test: refused once to see the SDK retry');
  };
}

/**
 * A publish refused as Kafka refuses one it cannot make durable (retriable: the route answers 503),
 * once per armed message key (user id): `startCollector(..., { sink: r.wrap })`, then
 * `r.keys.add(user)` before the SDK sends. Nothing of a refused publish reaches Kafka, so an SDK
 * that resends makes its events land once.
 */
export class RefuseOnce {
  readonly keys = new Set<string>();
  refused = 0;

  readonly wrap = (producer: BatchingProducer): EventSink => ({
    publish: async (messages) => {
      if (messages.some((m) => this.keys.delete(m.key))) {
        this.refused++;
        throw new PipelineError(PRODUCER_CODES.unavailable, 'refused once by the test', { retriable: true });
      }
      return producer.publish(messages);
    },
    healthy: () => producer.healthy(),
    backlogMs: () => producer.backlogMs(),
    check: (timeoutMs) => producer.check(timeoutMs),
  });
}

export async function startCollector(
  brokers: readonly string[],
  env: Record<string, string> = {},
  options: {
    geo?: boolean;
    topic?: string;
    /** Runs on every request after the app's own hooks: a test's fault (e.g. one 503 to see a retry). */
    onRequest?: onRequestAsyncHookHandler;
    /** Wraps the producer the app publishes through (e.g. to fail a publish and see the retry). */
    sink?: (producer: BatchingProducer) => EventSink;
  } = {},
): Promise<TestCollector> {
  const topic = options.topic ?? uniqueName('collector').replace(/_/g, '-');
  const config = readCollectorConfig({
    WRITE_KEYS: `${WRITE_KEY}:${SOURCE},other-key:other,${BROWSER_KEY}:web:track`,
    KAFKA_BROKERS: brokers.join(','),
    KAFKA_TOPIC: topic,
    KAFKA_TOPIC_PARTITIONS: '3',
    LOG_LEVEL: 'silent',
    PORT: '0',
    ...env,
  });
  const logger = createLogger('collector-test', config.LOG_LEVEL);
  const metrics = createCollectorMetrics();
  const kafka = createKafka({
    brokers: config.KAFKA_BROKERS,
    clientId: uniqueName('collector-test'),
    retries: config.KAFKA_RETRIES,
  });
  const producer = new BatchingProducer({
    kafka,
    topic,
    partitions: config.KAFKA_TOPIC_PARTITIONS,
    logger,
    maxSendBytes: config.KAFKA_MAX_SEND_BYTES,
    maxQueuedBytes: config.KAFKA_MAX_QUEUED_BYTES,
    publishTimeoutMs: config.KAFKA_PUBLISH_TIMEOUT_MS,
    compression: config.KAFKA_COMPRESSION,
    idempotent: config.KAFKA_IDEMPOTENT,
    metrics: producerMetrics(metrics),
  });
  await producer.start();
  const app = await buildApp({
    config,
    logger,
    codec,
    sink: options.sink?.(producer) ?? producer,
    geo: options.geo === false ? undefined : await sharedGeo(config.GEO_DATABASE),
    metrics,
  });
  if (options.onRequest !== undefined) app.addHook('onRequest', options.onRequest);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    app,
    url: `http://127.0.0.1:${port}`,
    topic,
    kafka,
    producer,
    metrics,
    close: async () => {
      await app.close();
      await producer.close();
      const admin = kafka.admin();
      await admin.connect();
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.disconnect();
    },
  };
}

export interface Posted {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Record<string, unknown> & {
    accepted?: number;
    rejected?: Array<{ index: number; event_id: string | null; errors: string[] }>;
    warnings?: Array<{ index: number; event_id: string | null; warnings: string[] }>;
    code?: string;
    message?: string;
  };
}

/** POSTs `body` (JSON-encoded unless a Buffer/string) with the test key unless headers say otherwise. */
export async function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Posted> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${WRITE_KEY}`, ...headers },
    body:
      typeof body === 'string' ? body : Buffer.isBuffer(body) ? new Uint8Array(body) : JSON.stringify(body),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await res.text();
  let parsed: Posted['body'];
  try {
    parsed = JSON.parse(text) as Posted['body'];
  } catch {
    parsed = { raw: text };
  }
  return { status: res.status, headers: res.headers, body: parsed };
}
