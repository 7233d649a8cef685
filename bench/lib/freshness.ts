/**
 * Freshness probes: while a load runs, one single-event request with a unique feature every 250 ms;
 * for each, the time from its 2xx to the first poll (every 100 ms) that finds its feature in
 * rollup_users_hourly_feature, i.e. until a dashboard could show it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { nativeEvent, REQUEST_HEADERS } from './data.ts';

export interface Freshness {
  /** 2xx -> visible, per probe that became visible. */
  readonly freshnessMs: number[];
  /** Probes the collector did not answer with 2xx. */
  readonly failed: number;
  /** Probes answered 2xx that were not visible `settleMs` after probing stopped. */
  readonly unseen: number;
}

export async function probeFreshness(
  clickhouseUrl: string,
  o: {
    collectorUrl: string;
    database: string;
    /** Prefix of the probes' feature names, unique within the database. */
    tag: string;
    /** Probing stops when this aborts; polling goes on until every probe is seen or settleMs. */
    stop: AbortSignal;
    settleMs: number;
    /** Called on each probe's 2xx (a caller counting every accepted event counts these too). */
    onAck?: () => void;
  },
): Promise<Freshness> {
  const acked = new Map<string, number>();
  const seen = new Map<string, number>();
  let failed = 0;
  const prober = (async () => {
    for (let i = 0; !o.stop.aborted && i < 100_000; i++) {
      const feature = `${o.tag}-${i}`;
      const r = await fetch(`${o.collectorUrl}/v1/events`, {
        method: 'POST',
        headers: REQUEST_HEADERS,
        body: JSON.stringify(nativeEvent(i, feature)),
        // A probe stuck behind an overloaded intake must not keep the scenario open.
        signal: AbortSignal.timeout(10_000),
      }).catch(() => undefined);
      if (r?.ok) {
        acked.set(feature, performance.now());
        o.onAck?.();
      } else failed++;
      await r?.arrayBuffer().catch(() => undefined);
      await sleep(250);
    }
  })();
  const query = encodeURIComponent(
    `SELECT feature FROM rollup_users_hourly_feature WHERE feature LIKE '${o.tag}-%' GROUP BY feature`,
  );
  let settleDeadline = Number.POSITIVE_INFINITY;
  let done = false;
  void prober.then(() => {
    settleDeadline = Date.now() + o.settleMs;
  });
  while (!done && Date.now() < settleDeadline) {
    const r = await fetch(`${clickhouseUrl}/?database=${o.database}&query=${query}`, {
      signal: AbortSignal.timeout(10_000),
    }).catch(() => undefined);
    const now = performance.now();
    const text = r?.ok ? await r.text().catch(() => '') : '';
    for (const f of text.split('\n')) if (f !== '' && !seen.has(f)) seen.set(f, now);
    done = settleDeadline !== Number.POSITIVE_INFINITY && [...acked.keys()].every((f) => seen.has(f));
    await sleep(100);
  }
  await prober;
  const freshnessMs: number[] = [];
  let unseen = 0;
  for (const [f, at] of acked) {
    const s = seen.get(f);
    if (s === undefined) unseen++;
    else freshnessMs.push(Math.max(0, s - at));
  }
  return { freshnessMs, failed, unseen };
}
