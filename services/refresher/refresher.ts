/**
 * The refresher's work: one pass finds the closed days whose finished numbers are missing or stale
 * (services/lib/finished-days.ts decides) in each reporting time zone and computes them exactly,
 * newest first, a run of consecutive days per query pair; the loop repeats passes, back to back
 * while days are pending (catching up after downtime) and every interval otherwise.
 *
 * Idempotent: a pass writes whole days with one computed_at, so a crash mid-pass or two refreshers
 * at once leave correct numbers (the later write wins at merges; readers take the day's newest).
 * Bounded: at most maxDaysPerPass days per pass, runDays days per query, one query at a time, and
 * `settings` (max_threads, spill thresholds, querySettings) for each, so ingestion keeps the cores
 * it needs. A run's exact counts hold every distinct user of its days' windows at once, so its
 * memory grows with the data: a run that exceeds ClickHouse's per-query memory limit is split in
 * halves down to single days, and the shorter length is kept for the rest of the process's life
 * (the data only grows); a single day over the limit fails the pass (retried every interval).
 *
 * The cut-off: a pass stamps its numbers with `server now - settle`, the newest mark it is sure to
 * include. A mark is written during its insert and the insert's rows become visible when it ends;
 * settle is longer than an insert takes, so every mark older than the stamp stands for rows the
 * scan saw, and a mark at or after it keeps the day stale for the query API and the next pass.
 */
import type { ClickHouseClient, ClickHouseSettings } from '../lib/clickhouse.ts';
import { clickhouseErrorCode, rowInserter } from '../lib/clickhouse.ts';
import {
  dayRuns,
  daysOf,
  doneQuery,
  dueDays,
  type HourMark,
  isoDay,
  localDay,
  marksQuery,
} from '../lib/finished-days.ts';
import type { Logger } from '../lib/logger.ts';
import { DAY_MS } from '../lib/time.ts';
import type { RefresherMetrics } from './metrics.ts';
import { newUsersQuery, STATE_QUERY, windowsQuery } from './sql.ts';

export interface RefresherOptions {
  readonly client: ClickHouseClient;
  readonly timeZones: readonly string[];
  readonly settleMs: number;
  readonly runDays: number;
  readonly maxDaysPerPass: number;
  readonly intervalMs: number;
  readonly settings?: ClickHouseSettings;
  readonly metrics: RefresherMetrics;
  readonly logger: Logger;
  /**
   * Whether this refresher may run passes now (it holds the cluster's lease); unset: always. A
   * refresher that may not stands by and asks again every interval.
   */
  readonly mayRun?: () => boolean;
}

export interface PassResult {
  /** Days computed in this pass, all zones. */
  readonly computed: number;
  /** Days due but left for the next pass (over maxDaysPerPass), all zones: run it at once. */
  readonly pending: number;
  /** Stale days whose newest mark has not settled yet, all zones: a later pass takes them. */
  readonly waiting: number;
}

/** ClickHouse's MEMORY_LIMIT_EXCEEDED. */
const MEMORY_LIMIT_EXCEEDED = 241;

/** The settings of every refresher query: its thread budget and where its sorts and aggregations spill. */
export function querySettings(o: { maxThreads: number; spillBytes: number }): ClickHouseSettings {
  return {
    max_threads: o.maxThreads,
    max_bytes_before_external_sort: String(o.spillBytes),
    max_bytes_before_external_group_by: String(o.spillBytes),
  };
}

const ROW_COLUMNS = ['tz', 'kind', 'value', 'day', 'dau', 'wau', 'mau', 'new_users', 'computed_at'] as const;

export class Refresher {
  private readonly o: RefresherOptions;
  private readonly insert;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** Aborts the query in flight at stop: a catch-up run can take minutes. */
  private readonly abort = new AbortController();
  /** False while the newest pass failed (ClickHouse down or refusing). */
  private lastPassOk = true;
  private lastSuccessAt = 0;
  /** Days per query: runDays until a run exceeds the memory limit, then shorter. */
  private runDays: number;

  constructor(o: RefresherOptions) {
    this.o = o;
    this.insert = rowInserter(o.client);
    this.runDays = o.runDays;
    o.metrics.runDays.set(this.runDays);
  }

  private async rows<T>(query: string): Promise<T[]> {
    const rs = await this.o.client.query({
      query,
      format: 'JSONEachRow',
      abort_signal: this.abort.signal,
      ...(this.o.settings ? { clickhouse_settings: this.o.settings } : {}),
    });
    return rs.json<T>();
  }

  /** One pass over every zone; throws when ClickHouse fails (the loop retries next interval). */
  async pass(): Promise<PassResult> {
    const end = this.o.metrics.passDuration.startTimer();
    const [state] = await this.rows<{ now: number; facts_from: number }>(STATE_QUERY);
    const nowMs = Number(state?.now ?? 0) * 1000;
    const factsFrom =
      Number(state?.facts_from ?? 0) > 0 ? isoDay(Number(state?.facts_from) * DAY_MS) : undefined;
    const cutSec = Math.floor((nowMs - this.o.settleMs) / 1000);
    const marks: HourMark[] = (await this.rows<{ hour: number; marked: number }>(marksQuery())).map((m) => ({
      hourMs: Number(m.hour) * 1000,
      markedMs: Number(m.marked) * 1000,
    }));
    let computed = 0;
    let pending = 0;
    let waitingAll = 0;
    for (const tz of this.o.timeZones) {
      const done = new Map(
        (await this.rows<{ day: string; computed: number }>(doneQuery(tz))).map((d) => [
          d.day,
          Number(d.computed) * 1000,
        ]),
      );
      const { due, waiting } = dueDays({
        marks,
        done,
        tz,
        today: localDay(nowMs, tz),
        nowMs,
        settleMs: this.o.settleMs,
        ...(factsFrom === undefined ? {} : { factsFrom }),
      });
      const now = due.slice(0, this.o.maxDaysPerPass);
      for (const [from, to] of dayRuns(now, this.runDays).reverse()) {
        await this.computeRun(tz, from, to, cutSec);
      }
      computed += now.length;
      pending += due.length - now.length;
      waitingAll += waiting;
      this.o.metrics.daysPending.set({ tz }, due.length - now.length + waiting);
      this.o.metrics.daysComputed.inc({ tz }, now.length);
    }
    end();
    return { computed, pending, waiting: waitingAll };
  }

  /**
   * Computes days [from, to] of `tz`; a run over ClickHouse's memory limit is computed again in
   * halves (newest first, like the pass), each half split again if it is still over.
   */
  private async computeRun(tz: string, from: string, to: string, cutSec: number): Promise<void> {
    try {
      await this.computeDays(tz, from, to, cutSec);
    } catch (err) {
      const days = daysOf(from, to);
      if (days.length === 1 || clickhouseErrorCode(err) !== MEMORY_LIMIT_EXCEEDED || this.stopped) throw err;
      this.runDays = Math.min(this.runDays, Math.ceil(days.length / 2));
      this.o.metrics.runSplits.inc();
      this.o.metrics.runDays.set(this.runDays);
      this.o.logger.warn(
        { tz, from, to, runDays: this.runDays },
        'a run of days exceeded the ClickHouse memory limit; computing it in shorter runs from now on',
      );
      for (const [a, b] of dayRuns(days, this.runDays).reverse()) await this.computeRun(tz, a, b, cutSec);
    }
  }

  /** Computes days [from, to] of `tz` and writes their rows, then marks them finished. */
  private async computeDays(tz: string, from: string, to: string, cutSec: number): Promise<void> {
    const end = this.o.metrics.runDuration.startTimer();
    // DateTime('UTC') columns read 'YYYY-MM-DD hh:mm:ss' as UTC.
    const stamp = new Date(cutSec * 1000).toISOString().slice(0, 19).replace('T', ' ');
    type Key = string;
    const rows = new Map<Key, Record<string, string | number>>();
    const key = (day: string, kind: number, value: string): Key => `${day}\0${kind}\0${value}`;
    for (const w of await this.rows<{
      day: string;
      kind: number;
      value: string;
      dau: number;
      wau: number;
      mau: number;
    }>(windowsQuery(tz, from, to))) {
      rows.set(key(w.day, w.kind, w.value), {
        tz,
        kind: w.kind,
        value: w.value,
        day: w.day,
        dau: w.dau,
        wau: w.wau,
        mau: w.mau,
        new_users: 0,
        computed_at: stamp,
      });
    }
    for (const n of await this.rows<{ day: string; kind: number; value: string; new_users: number }>(
      newUsersQuery(tz, from, to),
    )) {
      const row = rows.get(key(n.day, n.kind, n.value));
      // A user new on a day was active that day, so its window row exists.
      if (row) row.new_users = n.new_users;
    }
    // Rows first, then the days: a reader that sees a day finished finds its rows.
    await this.insert('agg_active_users_daily', ROW_COLUMNS, [...rows.values()]);
    await this.insert(
      'agg_active_users_days',
      ['tz', 'day', 'computed_at'],
      daysOf(from, to).map((day) => ({ tz, day, computed_at: stamp })),
    );
    end();
    this.o.logger.debug({ tz, from, to, rows: rows.size }, 'finished days computed');
  }

  /**
   * Passes until stopped: back to back while days are pending, else every intervalMs; while
   * mayRun() says no, none (the loop only asks again every intervalMs).
   */
  start(): void {
    const loop = async (): Promise<void> => {
      let delay = this.o.intervalMs;
      if (this.o.mayRun?.() ?? true) {
        try {
          const r = await this.pass();
          this.lastPassOk = true;
          this.lastSuccessAt = Date.now();
          this.o.metrics.lastSuccess.set(this.lastSuccessAt / 1000);
          if (r.pending > 0) delay = 0;
          if (r.computed > 0) this.o.logger.info(r, 'refresh pass');
        } catch (err) {
          if (this.stopped) return;
          this.lastPassOk = false;
          this.o.metrics.passFailures.inc();
          this.o.logger.error({ err }, 'refresh pass failed; retrying next interval');
        }
      }
      if (!this.stopped)
        this.timer = setTimeout(() => {
          this.running = loop();
        }, delay);
    };
    this.running = loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.abort.abort();
    await this.running;
  }

  /** Ready unless the newest pass failed (a long first catch-up pass is still ready); detail for /readyz. */
  status(): { ok: boolean; detail: Record<string, unknown> } {
    return {
      ok: this.lastPassOk,
      detail: {
        lastSuccessAt: this.lastSuccessAt > 0 ? new Date(this.lastSuccessAt).toISOString() : null,
        // A standby is ready: it takes over when the holder goes (docs/KAFKA.md).
        leader: this.o.mayRun?.() ?? true,
      },
    };
  }
}
