/**
 * The one place that imports prom-client. Each service owns one registry (no global default
 * registry, so two services in one test process never collide) with the default process metrics
 * under its prefix. Names follow Prometheus conventions: `<service>_<subsystem>_<thing>_<unit>`,
 * seconds and bytes, `_total` for counters; label values must be bounded sets.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export { Counter, Gauge, Histogram, Registry };

export function createRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** Latency buckets from 1 ms to 30 s, for HTTP handlers, Kafka sends and ClickHouse inserts. */
export const LATENCY_BUCKETS_SECONDS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

/** Size buckets (rows or events) from 1 to 100k. */
export const COUNT_BUCKETS = [1, 5, 10, 50, 100, 500, 1_000, 5_000, 10_000, 50_000, 100_000];

/** Byte buckets from 256 B to 64 MiB. */
export const BYTE_BUCKETS = [
  256, 1_024, 4_096, 16_384, 65_536, 262_144, 1_048_576, 4_194_304, 16_777_216, 67_108_864,
];
