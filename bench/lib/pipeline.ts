/**
 * Watching a running pipeline (collector -> Kafka -> consumer -> ClickHouse) from the outside, the
 * way an operator would: rows in fact_user_activity, the group's lag from the broker (high
 * watermark - committed offset, not the consumer's own gauge, which issue 10 caught reading 0 while
 * wedged), both processes' RSS, the sender's counts. A stall (no new rows for `stallMs` while
 * accepted events are missing) is reported as a value, so a wedged consumer ends the scenario with
 * a result instead of hanging it.
 */

import type { Admin } from '../../services/lib/kafka.ts';
import { groupLag } from '../../test/fixtures/kafka.ts';
import { type PipelineCpu, pipelineCpu, rssBytes } from './measure.ts';
import type { SenderProgress } from './sender.ts';

export interface Sample {
  /** ms since the watch started. */
  readonly t: number;
  readonly rows: number;
  /** NaN when the broker did not answer in time. */
  readonly lag: number;
  readonly collectorRss: number;
  readonly consumerRss: number;
  readonly accepted: number;
  /** The sender's non-2xx answers, socket errors and timeouts so far. */
  readonly errors: number;
  /** The consumer's failed inserts and dead-lettered messages so far (NaN when not scraped). */
  readonly insertErrors: number;
  readonly deadLettered: number;
  /** Cumulative CPU seconds of each part: the difference between samples says who was busy when. */
  readonly cpu: PipelineCpu;
  /**
   * Where each service's RSS is (NaN when not scraped): the V8 heap (committed) and memory outside
   * it (Buffers), from its process metrics, so an RSS step can be told apart.
   */
  readonly heap: { readonly collector: number; readonly consumer: number };
  readonly external: { readonly collector: number; readonly consumer: number };
}

/** One ClickHouse HTTP query's single scalar answer. */
export async function chScalar(clickhouseUrl: string, database: string, sql: string): Promise<number> {
  const r = await fetch(`${clickhouseUrl}/?database=${database}&query=${encodeURIComponent(sql)}`, {
    signal: AbortSignal.timeout(120_000),
  });
  const text = (await r.text()).trim();
  if (!r.ok) throw new Error(`query failed (${r.status}): ${text.slice(0, 300)}`);
  return Number(text);
}

export const factRows = (clickhouseUrl: string, database: string): Promise<number> =>
  chScalar(clickhouseUrl, database, 'SELECT count() FROM fact_user_activity');

/**
 * Distinct event ids in fact_user_activity, counted in shards of about 2M rows so each uniqExact
 * fits the server's per-query memory on a small machine (event ids are disjoint across shards).
 */
export async function distinctEventIds(
  clickhouseUrl: string,
  database: string,
  rows: number,
): Promise<number> {
  const shards = Math.max(1, Math.ceil(rows / 2_000_000));
  let n = 0;
  for (let s = 0; s < shards; s++) {
    n += await chScalar(
      clickhouseUrl,
      database,
      `SELECT uniqExact(event_id) FROM fact_user_activity${shards > 1 ? ` WHERE cityHash64(event_id) % ${shards} = ${s}` : ''}`,
    );
  }
  return n;
}

/**
 * Sum over every series of a Prometheus metric from `url`/metrics; 0 when no series exists (a
 * labelled counter has no series until its first increment).
 */
export async function metricSum(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) {
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return sum;
}

export interface Watch {
  readonly samples: readonly Sample[];
  readonly last: () => Sample | undefined;
  /** Set once rows stopped growing for stallMs while fewer rows than accepted events had landed. */
  readonly stalledAt: () => Sample | undefined;
  readonly stop: () => void;
}

export function watchPipeline(o: {
  clickhouseUrl: string;
  database: string;
  admin: Admin;
  groupId: string;
  topic: string;
  collectorPid: number;
  consumerPid: number;
  /** The consumer's HTTP base URL: its /metrics are scraped with every sample when given. */
  consumerUrl?: string;
  /** The collector's HTTP base URL: its process metrics are scraped with every sample when given. */
  collectorUrl?: string;
  /** The sender's newest progress (accepted so far); several senders may feed one watch in turn. */
  progress: () => Pick<SenderProgress, 'accepted' | 'errors' | 'non2xx' | 'timeouts'>;
  everyMs: number;
  stallMs: number;
}): Watch {
  const started = Date.now();
  const samples: Sample[] = [];
  let lastGrowth = started;
  let stalled: Sample | undefined;
  let busy = false;
  const tick = async () => {
    // A slow ClickHouse or broker answer must not pile up concurrent samples.
    if (busy) return;
    busy = true;
    try {
      const from = (url: string | undefined, name: string) =>
        url === undefined ? Promise.resolve(Number.NaN) : metricSum(url, name).catch(() => Number.NaN);
      const scrape = (name: string) => from(o.consumerUrl, name);
      const [rows, lag, insertErrors, deadLettered, cHeap, cExt, kHeap, kExt] = await Promise.all([
        factRows(o.clickhouseUrl, o.database).catch(() => Number.NaN),
        groupLag(o.admin, o.groupId, o.topic).catch(() => Number.NaN),
        scrape('consumer_clickhouse_insert_errors_total'),
        scrape('consumer_dlq_messages_total'),
        from(o.collectorUrl, 'nodejs_heap_size_total_bytes'),
        from(o.collectorUrl, 'nodejs_external_memory_bytes'),
        scrape('nodejs_heap_size_total_bytes'),
        scrape('nodejs_external_memory_bytes'),
      ]);
      const p = o.progress();
      const prev = samples.at(-1);
      const s: Sample = {
        t: Date.now() - started,
        rows: Number.isNaN(rows) ? (prev?.rows ?? 0) : rows,
        lag,
        collectorRss: rssBytes(o.collectorPid),
        consumerRss: rssBytes(o.consumerPid),
        accepted: p.accepted,
        errors: p.errors + p.non2xx + p.timeouts,
        insertErrors,
        deadLettered,
        cpu: pipelineCpu(o.collectorPid, o.consumerPid),
        heap: { collector: cHeap, consumer: kHeap },
        external: { collector: cExt, consumer: kExt },
      };
      samples.push(s);
      if (prev === undefined || s.rows > prev.rows || s.rows >= s.accepted) lastGrowth = Date.now();
      else if (stalled === undefined && Date.now() - lastGrowth >= o.stallMs) stalled = s;
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void tick(), o.everyMs);
  return {
    samples,
    last: () => samples.at(-1),
    stalledAt: () => stalled,
    stop: () => clearInterval(timer),
  };
}

/**
 * Polls `url`/metrics every `everyMs` and keeps each named metric's highest value (summed over its
 * series); a scrape that fails or is slower than 10 s is skipped.
 */
export function metricPeaks(
  url: string,
  names: readonly string[],
  everyMs: number,
): { readonly stop: () => Record<string, number> } {
  const peaks: Record<string, number> = Object.fromEntries(names.map((n) => [n, Number.NaN]));
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    void Promise.all(
      names.map(async (n) => {
        const v = await metricSum(url, n).catch(() => Number.NaN);
        if (!Number.isNaN(v))
          peaks[n] = Number.isNaN(peaks[n] ?? Number.NaN) ? v : Math.max(peaks[n] ?? v, v);
      }),
    ).finally(() => {
      busy = false;
    });
  }, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      return peaks;
    },
  };
}
