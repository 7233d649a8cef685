/**
 * The collector's metrics, on its own registry. Names: collector_<subsystem>_<thing>_<unit>; every
 * label has a bounded value set (route patterns, status codes, reason enums, never raw input). The
 * request count and duration are the skeleton's (services/lib/ops-http.ts).
 */
import {
  BYTE_BUCKETS,
  COUNT_BUCKETS,
  Counter,
  createRegistry,
  Gauge,
  Histogram,
  LATENCY_BUCKETS_SECONDS,
  type Registry,
} from '../lib/metrics.ts';

export interface CollectorMetrics {
  readonly registry: Registry;
  readonly httpBodyBytes: Histogram<'route'>;
  readonly eventsAccepted: Counter<'api' | 'kind'>;
  readonly eventsRejected: Counter<'api' | 'reason'>;
  readonly unknownFields: Counter<'api'>;
  readonly botEvents: Counter;
  readonly clockSkew: Histogram;
  readonly kafkaProduceDuration: Histogram<'outcome'>;
  readonly kafkaProduceErrors: Counter<'code'>;
  readonly kafkaBatchMessages: Histogram;
  readonly kafkaBatchBytes: Histogram;
  readonly kafkaQueuedBytes: Gauge;
  readonly requestsShed: Counter<'reason'>;
}

export function createCollectorMetrics(): CollectorMetrics {
  const registry = createRegistry('collector');
  const registers = [registry];
  return {
    registry,
    httpBodyBytes: new Histogram({
      name: 'collector_http_request_body_bytes',
      help: 'Request body bytes as received (Content-Length, before decompression).',
      labelNames: ['route'],
      buckets: BYTE_BUCKETS,
      registers,
    }),
    eventsAccepted: new Counter({
      name: 'collector_events_accepted_total',
      help: 'Events acknowledged by Kafka and reported accepted.',
      labelNames: ['api', 'kind'],
      registers,
    }),
    eventsRejected: new Counter({
      name: 'collector_events_rejected_total',
      help: 'Events rejected, by reason.',
      labelNames: ['api', 'reason'],
      registers,
    }),
    unknownFields: new Counter({
      name: 'collector_events_unknown_fields_total',
      help: 'Unknown fields seen in accepted events (typos or newer SDKs).',
      labelNames: ['api'],
      registers,
    }),
    botEvents: new Counter({
      name: 'collector_events_bot_total',
      help: 'Accepted events whose User-Agent is a bot (flagged is_bot).',
      registers,
    }),
    clockSkew: new Histogram({
      name: 'collector_clock_skew_seconds',
      help: 'Absolute difference between received_at and the client sent_at.',
      buckets: [0.1, 1, 10, 60, 600, 3_600, 86_400, 604_800, 31_536_000],
      registers,
    }),
    kafkaProduceDuration: new Histogram({
      name: 'collector_kafka_produce_duration_seconds',
      help: 'Duration of one produce request (acks=all), by outcome.',
      labelNames: ['outcome'],
      buckets: LATENCY_BUCKETS_SECONDS,
      registers,
    }),
    kafkaProduceErrors: new Counter({
      name: 'collector_kafka_produce_errors_total',
      help: 'Publishes that failed, by error code.',
      labelNames: ['code'],
      registers,
    }),
    kafkaBatchMessages: new Histogram({
      name: 'collector_kafka_batch_messages',
      help: 'Messages per produce request (batched across HTTP requests).',
      buckets: COUNT_BUCKETS,
      registers,
    }),
    kafkaBatchBytes: new Histogram({
      name: 'collector_kafka_batch_bytes',
      help: 'Payload bytes per produce request.',
      buckets: BYTE_BUCKETS,
      registers,
    }),
    kafkaQueuedBytes: new Gauge({
      name: 'collector_kafka_queued_bytes',
      help: 'Bytes waiting for or in a produce request.',
      registers,
    }),
    requestsShed: new Counter({
      name: 'collector_requests_shed_total',
      help: 'Intake requests answered 503 before their body was read, because the publish backlog had stayed over MAX_PUBLISH_BACKLOG_MS for PUBLISH_BACKLOG_INTERVAL_MS (or exceeded both together).',
      labelNames: ['reason'],
      registers,
    }),
  };
}

/** Adapts the producer's callbacks to the collector's Kafka metrics. */
export function producerMetrics(m: CollectorMetrics) {
  return {
    onSend: (s: { messages: number; bytes: number; seconds: number; ok: boolean }) => {
      m.kafkaProduceDuration.observe({ outcome: s.ok ? 'ok' : 'error' }, s.seconds);
      m.kafkaBatchMessages.observe(s.messages);
      m.kafkaBatchBytes.observe(s.bytes);
    },
    onQueuedBytes: (bytes: number) => m.kafkaQueuedBytes.set(bytes),
  };
}
