/**
 * Starts the bench's HTTP sender (sender-main.ts) as a child process and follows its progress:
 * distinct native-API batches, closed-loop (N connections as fast as the server answers: its
 * maximum) or open-loop (a fixed offered rate: overload, or a steady fraction of the maximum).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { ROOT } from './processes.ts';

interface Common {
  /** The collector's /v1/events. */
  readonly url: string;
  readonly perRequest: number;
  /** Users cycle: event `seq` belongs to user `seq % users`. */
  readonly users: number;
  /** First event sequence number (several senders into one table use disjoint ranges). */
  readonly seqStart: number;
  /** 'distinct': every event once (each can be found again); 'pool': 64 bodies reused (cheap). */
  readonly bodies: 'distinct' | 'pool';
  /** Stop after this many events' requests, or after this long, whichever comes first. */
  readonly events?: number;
  readonly durationS?: number;
  /** Per request, as an SDK would give up. */
  readonly timeoutMs: number;
  /** Answers slower than this are counted as `slow` (what an SDK with a shorter timeout would lose). */
  readonly slowMs?: number;
  readonly progressMs: number;
  /** The 10-character user id prefix; random (cold caches) when absent. */
  readonly userPrefix?: string;
}

export type SenderOptions = Common &
  (
    | {
        readonly mode: 'closed';
        readonly connections: number;
        /**
         * Like an SDK: a request refused with 429/503 + Retry-After is sent again, same body, after
         * that many seconds, so the whole volume is accepted in the end. Default: the next body.
         */
        readonly backOff?: boolean;
      }
    | { readonly mode: 'open'; readonly rate: number; readonly maxInFlight: number }
  );

export interface SenderProgress {
  readonly type: 'progress' | 'result';
  /** ms since the epoch. */
  readonly at: number;
  readonly requests: number;
  readonly ok: number;
  /** Events the collector's 2xx responses counted as accepted. */
  readonly accepted: number;
  readonly non2xx: number;
  /** Socket errors and unreadable 2xx bodies. */
  readonly errors: number;
  readonly timeouts: number;
  readonly inFlight: number;
}

export interface SenderResult extends SenderProgress {
  readonly type: 'result';
  readonly userPrefix: string;
  readonly startedAt: number;
  readonly endedAt: number;
  /** From the start until the last answer (in-flight requests included). */
  readonly seconds: number;
  /** From the start until the last request was issued. */
  readonly issueSeconds: number;
  /** Answers per second since the start, by completion time: 2xx, and all else (timeouts too). */
  readonly okPerSecond: readonly number[];
  readonly badPerSecond: readonly number[];
  /** ms since the epoch of the first and last 2xx (0 when none). */
  readonly firstOkAt: number;
  readonly lastOkAt: number;
  /** Open loop: requests that were due while maxInFlight were open (the generator's own limit). */
  readonly notSent: number;
  /** Events named as rejected in 2xx responses. */
  readonly rejected: number;
  readonly statuses: Readonly<Record<string, number>>;
  /** Non-2xx answers by `<status> <code from the error body>`, socket errors by `socket <errno code>`. */
  readonly codes: Readonly<Record<string, number>>;
  /** 429/503 answers without a Retry-After header. */
  readonly retryAfterMissing: number;
  /** Answers (any status) slower than `slowMs`. */
  readonly slow: number;
  readonly okP50Ms: number;
  readonly okP99Ms: number;
  readonly okMaxMs: number;
  /** p99 over every answered request, whatever its status. */
  readonly allP99Ms: number;
}

export interface Sender {
  readonly pid: number;
  /** The newest progress line (zeros before the first). */
  readonly progress: () => SenderProgress;
  /** Asks the sender to stop issuing; `done` then resolves once in-flight requests finished. */
  readonly stop: () => void;
  readonly done: Promise<SenderResult>;
}

export function startSender(o: SenderOptions): Sender {
  const child = spawn(process.execPath, [`${ROOT}bench/lib/sender-main.ts`, JSON.stringify(o)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error('sender: could not start');
  let last: SenderProgress = {
    type: 'progress',
    at: Date.now(),
    requests: 0,
    ok: 0,
    accepted: 0,
    non2xx: 0,
    errors: 0,
    timeouts: 0,
    inFlight: 0,
  };
  let result: SenderResult | undefined;
  let buf = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString('utf8');
    const lines = buf.split('\n');
    buf = lines.pop() ?? '';
    for (const line of lines) {
      const p = JSON.parse(line) as SenderProgress;
      last = p;
      if (p.type === 'result') result = p as SenderResult;
    }
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-4_000);
  });
  const done = once(child, 'exit').then(([code]) => {
    if (result === undefined)
      throw new Error(`sender exited with ${String(code)} without a result:\n${stderr}`);
    return result;
  });
  return { pid: child.pid, progress: () => last, stop: () => child.kill('SIGTERM'), done };
}
