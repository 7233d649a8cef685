/**
 * The bench's HTTP sender, run as its own process (`node bench/lib/sender-main.ts '<json>'`, started
 * by sender.ts) so generating bodies and timing responses never shares an event loop with the
 * service under test or the bench's probes and polls. Unlike autocannon it sends a different body
 * every request (distinct user ids and content-derived event ids, so every accepted event can be
 * found again in ClickHouse), reads the collector's `accepted` count, and can run open-loop (a fixed
 * offered rate, whatever the responses do: the only honest way to offer 2x a server's maximum).
 *
 * Writes one JSON line per progress tick and a final `result` line on stdout; SIGTERM stops issuing
 * new requests and waits for the ones in flight (each bounded by its timeout).
 */
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { nativeEvent, REQUEST_HEADERS } from './data.ts';
import { summary } from './measure.ts';
import type { SenderOptions, SenderProgress, SenderResult } from './sender.ts';

const o = JSON.parse(process.argv[2] ?? '{}') as SenderOptions;
const target = new URL(o.url);
const maxInFlight = o.mode === 'closed' ? o.connections : o.maxInFlight;
const backOff = o.mode === 'closed' && o.backOff === true;
const agent = new Agent({ keepAlive: true, maxSockets: maxInFlight, maxFreeSockets: maxInFlight });

/** 10 random [a-z0-9] characters: with `_u` and 6 digits a user id is 18 characters, as in issue 10. */
const userPrefix =
  o.userPrefix ?? [...randomBytes(10)].map((b) => 'abcdefghijklmnopqrstuvwxyz0123456789'[b % 36]).join('');

/**
 * Request `k`'s body. 'distinct': events seqStart + k*perRequest ..., each naming its sequence
 * number (so its content-derived event id is unique) and user `seq % users` (consecutive events are
 * consecutive users: a batch carries perRequest different users, all new until every user was seen).
 */
function body(k: number): string {
  const events = new Array<Record<string, unknown>>(o.perRequest);
  for (let j = 0; j < o.perRequest; j++) {
    const seq = o.seqStart + k * o.perRequest + j;
    const e = nativeEvent(seq);
    e.user_id = `${userPrefix}_u${String(seq % o.users).padStart(6, '0')}`;
    e.properties = { ...(e.properties as object), seq };
    events[j] = e;
  }
  return JSON.stringify({ events });
}
const poolBodies = o.bodies === 'pool' ? Array.from({ length: 64 }, (_, k) => body(k)) : [];

const started = Date.now();
const deadline = o.durationS === undefined ? Number.POSITIVE_INFINITY : started + o.durationS * 1000;
const maxRequests = o.events === undefined ? Number.POSITIVE_INFINITY : Math.ceil(o.events / o.perRequest);
let stopping = false;
let issuingEndedAt = started;
let issued = 0;
let inFlight = 0;
let notSent = 0;
let ok = 0;
let accepted = 0;
let rejected = 0;
let errors = 0;
let timeouts = 0;
let firstOkAt = 0;
let lastOkAt = 0;
let retryAfterMissing = 0;
let slow = 0;
const statuses: Record<string, number> = {};
const codes: Record<string, number> = {};
const okLatencies: number[] = [];
/** Per second since the start (by completion time): answered 2xx, and everything else. */
const okPerSecond: number[] = [];
const badPerSecond: number[] = [];
const bump = (xs: number[]) => {
  const i = Math.floor((Date.now() - started) / 1000);
  while (xs.length <= i) xs.push(0);
  xs[i] = (xs[i] ?? 0) + 1;
};
const allLatencies: number[] = [];

/** Resolves with the Retry-After seconds of a 429/503 that carried one, else undefined. */
function send(k: number): Promise<number | undefined> {
  const payload = o.bodies === 'pool' ? (poolBodies[k % 64] as string) : body(k);
  inFlight++;
  const t = performance.now();
  return new Promise<number | undefined>((resolve) => {
    let finished = false;
    let timedOut = false;
    let retryAfterS: number | undefined;
    const done = () => {
      if (finished) return;
      finished = true;
      inFlight--;
      resolve(retryAfterS);
    };
    const req = request(
      {
        agent,
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'POST',
        headers: { ...REQUEST_HEADERS, 'content-length': Buffer.byteLength(payload) },
        timeout: o.timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', () => {
          if (!timedOut) {
            errors++;
            bump(badPerSecond);
          }
          done();
        });
        res.on('end', () => {
          const ms = performance.now() - t;
          const status = res.statusCode ?? 0;
          if (o.slowMs !== undefined && ms > o.slowMs) slow++;
          statuses[status] = (statuses[status] ?? 0) + 1;
          allLatencies.push(ms);
          bump(status >= 200 && status < 300 ? okPerSecond : badPerSecond);
          if (status >= 200 && status < 300) {
            ok++;
            okLatencies.push(ms);
            lastOkAt = Date.now();
            if (firstOkAt === 0) firstOkAt = lastOkAt;
            try {
              const r = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
                accepted?: number;
                rejected?: unknown[];
              };
              accepted += r.accepted ?? 0;
              rejected += r.rejected?.length ?? 0;
            } catch {
              errors++;
            }
          } else {
            if (status === 429 || status === 503) {
              const header = res.headers['retry-after'];
              if (header === undefined) retryAfterMissing++;
              else retryAfterS = Number(header);
            }
            // The error code says which mechanism refused (under-pressure, queue cap, publish timeout).
            let code = 'unreadable body';
            try {
              code = String((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { code?: unknown }).code);
            } catch {
              // Not JSON (a proxy's page, a cut body): counted under 'unreadable body'.
            }
            codes[`${status} ${code}`] = (codes[`${status} ${code}`] ?? 0) + 1;
          }
          done();
        });
      },
    );
    req.on('timeout', () => {
      timeouts++;
      timedOut = true;
      bump(badPerSecond);
      // The socket error that destroy() raises is this timeout, already counted.
      req.destroy();
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (!timedOut) {
        errors++;
        bump(badPerSecond);
        const key = `socket ${err.code ?? err.message}`;
        codes[key] = (codes[key] ?? 0) + 1;
      }
      done();
    });
    req.end(payload);
  });
}

const more = () => {
  if (!stopping && issued < maxRequests && Date.now() < deadline) return true;
  if (issuingEndedAt === started) issuingEndedAt = Date.now();
  return false;
};

async function closedLoop(connections: number): Promise<void> {
  const worker = async () => {
    while (more()) {
      const k = issued++;
      let retryAfterS = await send(k);
      // SDK-like (backOff): the same body again after Retry-After, until it is taken or the run ends.
      while (backOff && retryAfterS !== undefined && !stopping && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, retryAfterS === undefined ? 0 : retryAfterS * 1000));
        retryAfterS = await send(k);
      }
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
}

/** Offers `rate` req/s on a 5 ms tick; a request due while maxInFlight are open is counted, not sent. */
async function openLoop(rate: number): Promise<void> {
  const running = new Set<Promise<unknown>>();
  let due = 0;
  while (more()) {
    due = Math.min(maxRequests, Math.floor(((Date.now() - started) / 1000) * rate));
    while (issued + notSent < due && more()) {
      if (inFlight >= maxInFlight) {
        notSent++;
        continue;
      }
      const p = send(issued++);
      running.add(p);
      void p.then(() => running.delete(p));
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  await Promise.all(running);
}

function progress(): SenderProgress {
  return {
    type: 'progress',
    at: Date.now(),
    requests: issued,
    ok,
    accepted,
    non2xx: Object.entries(statuses).reduce((n, [s, c]) => (s.startsWith('2') ? n : n + c), 0),
    errors,
    timeouts,
    inFlight,
  };
}

process.on('SIGTERM', () => {
  stopping = true;
});
const ticker = setInterval(() => process.stdout.write(`${JSON.stringify(progress())}\n`), o.progressMs);
await (o.mode === 'closed' ? closedLoop(o.connections) : openLoop(o.rate));
clearInterval(ticker);
const ended = Date.now();
const okS = summary(okLatencies);
const allS = summary(allLatencies);
const result: SenderResult = {
  ...progress(),
  type: 'result',
  userPrefix,
  startedAt: started,
  endedAt: ended,
  seconds: (ended - started) / 1000,
  issueSeconds: (issuingEndedAt - started) / 1000,
  okPerSecond,
  badPerSecond,
  firstOkAt,
  lastOkAt,
  notSent,
  rejected,
  statuses,
  codes,
  retryAfterMissing,
  slow,
  okP50Ms: okS.p50,
  okP99Ms: okS.p99,
  okMaxMs: okS.max,
  allP99Ms: allS.p99,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
agent.destroy();
