/**
 * The consumer's metrics (services/consumer/README.md says what each means and what to do when it
 * moves). Names are fixed here; label values are bounded: partition numbers, two table names,
 * ClickHouse error codes, poison reasons, flush reasons.
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
import type { PartitionState } from './progress.ts';

export interface ConsumerMetrics {
  readonly registry: Registry;
  readonly batchRows: Histogram;
  readonly batchBytes: Histogram;
  readonly batchSeconds: Histogram;
  readonly flushes: Counter<'reason'>;
  readonly insertSeconds: Histogram<'table'>;
  readonly insertErrors: Counter<'table' | 'code'>;
  readonly insertRetries: Counter<'table'>;
  readonly rowsWritten: Counter<'table'>;
  readonly dlqMessages: Counter<'reason'>;
  readonly dlqSendsFailing: Gauge;
  readonly bufferedBytes: Gauge;
  readonly bufferedRows: Gauge;
  readonly fetchPaused: Gauge;
  readonly eventDelaySeconds: Histogram;
  readonly lookups: Counter<'kind'>;
  readonly lookupFailures: Counter<'code'>;
  readonly lookupsSkipped: Counter<'code'>;
  readonly actorsKept: Counter;
  readonly lookupSeconds: Histogram<'kind'>;
  readonly markInserted: () => void;
  /** Where the per-partition lag and stalled gauges read their values at scrape time. */
  readonly watchPartitions: (states: () => readonly PartitionState[]) => void;
  /** Where the known-ids gauges read the context's set sizes at scrape time. */
  readonly watchKnownIds: (sizes: () => { links: number; profiles: number; bytes: number }) => void;
}

/** Event delay: collector receipt -> written to ClickHouse; seconds to an hour (catch-up). */
const DELAY_BUCKETS_SECONDS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600];

export function createConsumerMetrics(now: () => number = Date.now): ConsumerMetrics {
  const registry = createRegistry('consumer');
  const registers = [registry];
  let lastInsertAt = now();
  new Gauge({
    name: 'consumer_clickhouse_seconds_since_last_insert',
    help: 'Seconds since ClickHouse last acknowledged an insert (or since start).',
    registers,
    collect() {
      this.set((now() - lastInsertAt) / 1000);
    },
  });
  let known = () => ({ links: 0, profiles: 0, bytes: 0 });
  new Gauge({
    name: 'consumer_context_known_ids',
    help: 'Ids the consumer holds as possibly linked (kind=link) or possibly having a profile (kind=profile); only these are looked up.',
    labelNames: ['kind'],
    registers,
    collect() {
      const k = known();
      this.set({ kind: 'link' }, k.links);
      this.set({ kind: 'profile' }, k.profiles);
    },
  });
  new Gauge({
    name: 'consumer_context_known_ids_bytes',
    help: 'Memory of the known-id sets (4 bytes per id once merged).',
    registers,
    collect() {
      this.set(known().bytes);
    },
  });
  let partitions: () => readonly PartitionState[] = () => [];
  // Computed at scrape time, so a partition no longer owned disappears and stalled time is current.
  new Gauge({
    name: 'consumer_kafka_lag_messages',
    help: "Per owned partition: high watermark - the group's committed offset (refreshed on a timer and after each commit).",
    labelNames: ['partition'],
    registers,
    collect() {
      this.reset();
      for (const p of partitions()) this.set({ partition: String(p.partition) }, p.lag);
    },
  });
  new Gauge({
    name: 'consumer_partition_stalled_seconds',
    help: 'Per owned partition: seconds since its committed offset last advanced while it has lag (0 without lag).',
    labelNames: ['partition'],
    registers,
    collect() {
      this.reset();
      for (const p of partitions()) this.set({ partition: String(p.partition) }, p.stalledSeconds);
    },
  });
  return {
    registry,
    markInserted: () => {
      lastInsertAt = now();
    },
    watchPartitions: (states) => {
      partitions = states;
    },
    watchKnownIds: (sizes) => {
      known = sizes;
    },
    batchRows: new Histogram({
      name: 'consumer_batch_rows',
      help: 'Rows per flushed batch (both ingest tables).',
      buckets: COUNT_BUCKETS,
      registers,
    }),
    batchBytes: new Histogram({
      name: 'consumer_batch_bytes',
      help: 'Kafka payload bytes per flushed batch.',
      buckets: BYTE_BUCKETS,
      registers,
    }),
    batchSeconds: new Histogram({
      name: 'consumer_batch_duration_seconds',
      help: 'From the first row entering a batch to the batch written (buffering + inserts + retries).',
      buckets: LATENCY_BUCKETS_SECONDS,
      registers,
    }),
    flushes: new Counter({
      name: 'consumer_batch_flushes_total',
      help: 'Batches flushed, by what triggered the flush (rows, bytes, time, lag, shutdown).',
      labelNames: ['reason'],
      registers,
    }),
    insertSeconds: new Histogram({
      name: 'consumer_clickhouse_insert_duration_seconds',
      help: 'Duration of one successful insert.',
      labelNames: ['table'],
      buckets: LATENCY_BUCKETS_SECONDS,
      registers,
    }),
    insertErrors: new Counter({
      name: 'consumer_clickhouse_insert_errors_total',
      help: 'Failed insert attempts by ClickHouse error code ("unavailable" when there was no answer).',
      labelNames: ['table', 'code'],
      registers,
    }),
    insertRetries: new Counter({
      name: 'consumer_clickhouse_insert_retries_total',
      help: 'Insert retries scheduled after a failure.',
      labelNames: ['table'],
      registers,
    }),
    rowsWritten: new Counter({
      name: 'consumer_rows_written_total',
      help: 'Rows acknowledged by ClickHouse.',
      labelNames: ['table'],
      registers,
    }),
    dlqMessages: new Counter({
      name: 'consumer_dlq_messages_total',
      help: 'Messages written to the dead-letter topic, by reason.',
      labelNames: ['reason'],
      registers,
    }),
    dlqSendsFailing: new Gauge({
      name: 'consumer_dlq_sends_failing',
      help: 'Dead-letter sends being retried because Kafka refuses them (the consumer is unready meanwhile).',
      registers,
    }),
    bufferedBytes: new Gauge({
      name: 'consumer_buffered_bytes',
      help: 'Kafka payload bytes held in memory (open batch plus the batch being written).',
      registers,
    }),
    bufferedRows: new Gauge({
      name: 'consumer_buffered_rows',
      help: 'Rows held in memory (open batch plus the batch being written).',
      registers,
    }),
    fetchPaused: new Gauge({
      name: 'consumer_fetch_paused',
      help: '1 while fetching is paused because ClickHouse inserts are failing (backpressure).',
      registers,
    }),
    eventDelaySeconds: new Histogram({
      name: 'consumer_event_delay_seconds',
      help: 'From the collector receiving an event (received_at) to ClickHouse acknowledging it.',
      buckets: DELAY_BUCKETS_SECONDS,
      registers,
    }),
    lookups: new Counter({
      name: 'consumer_profile_lookups_total',
      help: 'ClickHouse look-ups on an identity or profile cache miss (one per batch and kind).',
      labelNames: ['kind'],
      registers,
    }),
    lookupSeconds: new Histogram({
      name: 'consumer_profile_lookup_seconds',
      help: 'Duration of one look-up call (kind: identity, profile; known_all: the full read of the known ids; known_since: what other members identified; written_actor: re-delivered events looked up in the facts).',
      labelNames: ['kind'],
      buckets: LATENCY_BUCKETS_SECONDS,
      registers,
    }),
    lookupFailures: new Counter({
      name: 'consumer_profile_lookup_failures_total',
      help: 'Failed identity/profile look-up attempts that are retried (an outage or timeout), by ClickHouse code ("unavailable": no answer).',
      labelNames: ['code'],
      registers,
    }),
    actorsKept: new Counter({
      name: 'consumer_redelivered_actor_kept_total',
      help: 'Re-delivered events written again under the actor they were first written under, where the identity links known now would have re-keyed them (and the sketches counted both).',
      registers,
    }),
    lookupsSkipped: new Counter({
      name: 'consumer_profile_lookups_skipped_total',
      help: 'Batches written without their identity/profile look-up because ClickHouse refused it (not an outage), by code.',
      labelNames: ['code'],
      registers,
    }),
  };
}
