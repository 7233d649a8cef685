/**
 * A client that behaves like an analytics SDK: it POSTs batches to /v1/events and, on a 5xx, a 429
 * or a connection error or timeout, retries the same request (the same event ids) after a capped,
 * jittered exponential backoff, honouring Retry-After. An event counts as acknowledged only when a
 * 2xx names it accepted (not in `rejected`). It never gives up: a fault test ends when every batch
 * is acknowledged, so "no acknowledged event lost" and "no event lost while the client retried"
 * are the same check.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { WRITE_KEY } from '../integration/collector-harness.ts';
import type { AckedEvent } from './invariant.ts';

/** One event as sent (`wire`) and as it must be counted once acknowledged (`acked`). */
export interface PlannedEvent {
  readonly wire: Record<string, unknown>;
  readonly acked: AckedEvent;
}

export interface PlannedBatch {
  readonly events: readonly PlannedEvent[];
  /** The client's clock at send time (the batch-level sent_at), when the client sends one. */
  readonly sentAt?: string;
}

export interface SenderStats {
  requests: number;
  /** Requests that were a retry of an earlier one. */
  retries: number;
  /** Count per outcome: HTTP status, or `network` for connection errors and timeouts. */
  readonly outcomes: Record<string, number>;
  /** Events named in a 2xx's `rejected` list (validation; a fault test expects none). */
  rejected: number;
  /** Most attempts one batch needed. */
  maxAttempts: number;
}

export class RetryingSender {
  readonly stats: SenderStats = { requests: 0, retries: 0, outcomes: {}, rejected: 0, maxAttempts: 0 };
  private readonly o: {
    url: string;
    random: () => number;
    initialBackoffMs: number;
    maxBackoffMs: number;
    timeoutMs: number;
  };

  constructor(o: {
    url: string;
    random: () => number;
    initialBackoffMs?: number;
    maxBackoffMs?: number;
    timeoutMs?: number;
  }) {
    this.o = { initialBackoffMs: 100, maxBackoffMs: 2_000, timeoutMs: 15_000, ...o };
  }

  /** Resolves with the accepted events once a 2xx answered; retries everything else but a 4xx. */
  async send(batch: PlannedBatch): Promise<AckedEvent[]> {
    const body = JSON.stringify({
      events: batch.events.map((e) => e.wire),
      ...(batch.sentAt === undefined ? {} : { sent_at: batch.sentAt }),
    });
    for (let attempt = 0; ; attempt++) {
      this.stats.requests += 1;
      if (attempt > 0) this.stats.retries += 1;
      this.stats.maxAttempts = Math.max(this.stats.maxAttempts, attempt + 1);
      let retryAfterMs = 0;
      try {
        const res = await fetch(`${this.o.url}/v1/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${WRITE_KEY}` },
          body,
          signal: AbortSignal.timeout(this.o.timeoutMs),
        });
        const text = await res.text();
        this.count(String(res.status));
        if (res.status >= 200 && res.status < 300) {
          const parsed = JSON.parse(text) as { rejected?: { index: number }[] };
          const rejected = new Set((parsed.rejected ?? []).map((r) => r.index));
          this.stats.rejected += rejected.size;
          return batch.events.filter((_, i) => !rejected.has(i)).map((e) => e.acked);
        }
        // A 4xx other than 429 will not change on retry; an SDK drops the batch.
        if (res.status < 500 && res.status !== 429) {
          this.stats.rejected += batch.events.length;
          return [];
        }
        retryAfterMs = Number(res.headers.get('retry-after') ?? 0) * 1000;
      } catch {
        this.count('network');
      }
      const ceiling = Math.min(this.o.maxBackoffMs, this.o.initialBackoffMs * 2 ** Math.min(attempt, 20));
      const backoff = ceiling / 2 + this.o.random() * (ceiling / 2);
      await sleep(Math.max(backoff, Math.min(retryAfterMs, this.o.maxBackoffMs)));
    }
  }

  private count(outcome: string): void {
    this.stats.outcomes[outcome] = (this.stats.outcomes[outcome] ?? 0) + 1;
  }
}

/**
 * `concurrency` senders sending `next(i)` batches back to back until stop(); stop() lets every
 * batch in flight finish (retrying until acknowledged) and resolves with everything acknowledged.
 */
export function startLoad(o: {
  sender: RetryingSender;
  concurrency: number;
  next: (i: number) => PlannedBatch;
  /** Pause between two batches of one sender, ms (0 = as fast as the collector answers). */
  pauseMs?: number;
}): {
  readonly acked: AckedEvent[];
  readonly sent: () => number;
  readonly stop: () => Promise<AckedEvent[]>;
} {
  const acked: AckedEvent[] = [];
  let stopped = false;
  let i = 0;
  let sent = 0;
  const worker = async (): Promise<void> => {
    while (!stopped) {
      const batch = o.next(i++);
      sent += batch.events.length;
      acked.push(...(await o.sender.send(batch)));
      if (o.pauseMs) await sleep(o.pauseMs);
    }
  };
  const workers = Array.from({ length: o.concurrency }, worker);
  return {
    acked,
    sent: () => sent,
    stop: async () => {
      stopped = true;
      await Promise.all(workers);
      return acked;
    },
  };
}

/**
 * Batches of `size` native activity events from `users` users (`tag` prefixes their ids), spread
 * over the `days` UTC days before today, chosen by the seeded `random`; no sent_at, so the
 * collector keeps each timestamp as sent and that is the instant it must be counted at.
 */
export function activityBatches(o: {
  random: () => number;
  size: number;
  users: number;
  days: number;
  tag: string;
}): (i: number) => PlannedBatch {
  const today = Math.floor(Date.now() / 86_400_000) * 86_400_000;
  return () => ({
    events: Array.from({ length: o.size }, () => {
      const actor = `${o.tag}-u${Math.floor(o.random() * o.users)}`;
      const ts =
        today - (1 + Math.floor(o.random() * o.days)) * 86_400_000 + Math.floor(o.random() * 86_400_000);
      const eventId = randomUUID();
      return {
        wire: {
          event_id: eventId,
          user_id: actor,
          activity: 'view',
          feature: `f${Math.floor(o.random() * 5)}`,
          timestamp: new Date(ts).toISOString(),
        },
        acked: { eventId, actor, timestampMs: ts },
      };
    }),
  });
}
