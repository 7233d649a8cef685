/**
 * The refresher's metrics (services/refresher/README.md says what to do when they move). Labels
 * are bounded: the configured time zones only.
 */
import { Counter, createRegistry, Gauge, Histogram, type Registry } from '../lib/metrics.ts';

export interface RefresherMetrics {
  readonly registry: Registry;
  readonly daysPending: Gauge<'tz'>;
  readonly daysComputed: Counter<'tz'>;
  readonly passDuration: Histogram;
  readonly runDuration: Histogram;
  readonly passFailures: Counter;
  readonly runSplits: Counter;
  readonly runDays: Gauge;
  readonly lastSuccess: Gauge;
  readonly leader: Gauge;
}

/** A catch-up pass over weeks of closed days takes minutes on a small machine. */
const PASS_BUCKETS_SECONDS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

export function createRefresherMetrics(): RefresherMetrics {
  const registry = createRegistry('refresher');
  const registers = [registry];
  return {
    registry,
    daysPending: new Gauge({
      name: 'refresher_days_pending',
      help: 'Closed days whose finished numbers are missing or stale after the last pass (left for the next pass), per reporting time zone.',
      labelNames: ['tz'],
      registers,
    }),
    daysComputed: new Counter({
      name: 'refresher_days_computed_total',
      help: 'Closed days computed (or recomputed after late events), per reporting time zone.',
      labelNames: ['tz'],
      registers,
    }),
    passDuration: new Histogram({
      name: 'refresher_pass_duration_seconds',
      help: 'Duration of a successful refresh pass (every zone).',
      buckets: PASS_BUCKETS_SECONDS,
      registers,
    }),
    runDuration: new Histogram({
      name: 'refresher_run_duration_seconds',
      help: 'Duration of computing one run of consecutive days (two queries and two inserts).',
      buckets: PASS_BUCKETS_SECONDS,
      registers,
    }),
    passFailures: new Counter({
      name: 'refresher_pass_failures_total',
      help: 'Refresh passes that failed (ClickHouse unreachable or refusing); retried every interval.',
      registers,
    }),
    runSplits: new Counter({
      name: 'refresher_run_splits_total',
      help: 'Runs of days that exceeded the ClickHouse per-query memory limit and were computed again in halves.',
      registers,
    }),
    runDays: new Gauge({
      name: 'refresher_run_days',
      help: 'Consecutive days one refresher query computes now: REFRESH_RUN_DAYS, lower after a run exceeded the memory limit.',
      registers,
    }),
    lastSuccess: new Gauge({
      name: 'refresher_last_success_timestamp_seconds',
      help: 'Unix time of the last successful pass: time() minus this is how stale finished numbers may be.',
      registers,
    }),
    leader: new Gauge({
      name: 'refresher_lease_leader',
      help: '1 while this refresher holds the lease and runs passes, 0 while it stands by: the sum over refreshers of one cluster is 1.',
      registers,
    }),
  };
}
