/**
 * Demo traffic: sends realistic events (./generator.ts) to the collector's native API, so a new
 * user sees a live dashboard within a minute of starting. Two phases, either or both:
 *   backfill  the last DEMO_BACKFILL_DAYS days of history, as fast as DEMO_MAX_EVENTS_PER_SECOND allows
 *   live      DEMO_EVENTS_PER_SECOND events "now", until DEMO_DURATION_SECONDS passed (0 = until SIGTERM)
 * The rate is bounded in both phases; 429 and 503 from the collector are retried after its
 * Retry-After, so the demo never overruns a busy pipeline.
 *
 *   DEMO_WRITE_KEY=local-dev-key node services/demo/main.ts
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { bool, configOrExit, int, oneOf, readConfig, str, url } from '../lib/config.ts';
import { createLogger } from '../lib/logger.ts';
import { DAY_MS } from '../lib/time.ts';
import {
  badEvent,
  cumulativeWeights,
  type DemoEvent,
  dayOfActivity,
  liveEvent,
  population,
  rng,
} from './generator.ts';

const config = configOrExit('demo', () =>
  readConfig(
    {
      COLLECTOR_URL: url('collector base URL', 'http://127.0.0.1:8080'),
      DEMO_WRITE_KEY: str('collector write key (the local stack uses local-dev-key)'),
      DEMO_MODE: oneOf(['backfill', 'live', 'both'] as const, 'what to send', 'both'),
      DEMO_USERS: int('population size', 1500, 1, 1_000_000),
      DEMO_SEED: int('random seed: the same seed gives the same users', 42),
      DEMO_BACKFILL_DAYS: int("days of history (the collector's max event age is 365)", 35, 1, 364),
      DEMO_MAX_EVENTS_PER_SECOND: int('rate cap of the backfill', 3000, 1, 100_000),
      DEMO_EVENTS_PER_SECOND: int('rate of the live phase', 25, 1, 10_000),
      DEMO_DURATION_SECONDS: int('length of the live phase; 0 runs until SIGTERM', 0, 0),
      DEMO_BAD_EVENT_PERCENT: int('share of invalid events, in percent', 1, 0, 100),
      DEMO_BATCH_SIZE: int('events per request', 250, 1, 500),
      DEMO_SEND_IDENTIFY: bool('also link anonymous ids to users with /v1/identify', true),
      LOG_LEVEL: oneOf(
        ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const,
        'log level',
        'info',
      ),
    },
    process.env,
  ),
);

const log = createLogger('demo', config.LOG_LEVEL);
const r = rng(config.DEMO_SEED + 1);
const today = Math.floor(Date.now() / DAY_MS);
const users = population({
  seed: config.DEMO_SEED,
  users: config.DEMO_USERS,
  anonymousShare: 0.12,
  testAccountShare: 0.02,
  today,
});

const abort = new AbortController();
let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) process.exit(130);
    stopping = true;
    log.info({ signal }, 'stopping after the current request');
    abort.abort();
  });
}

const totals = { sent: 0, accepted: 0, rejected: 0, retries: 0 };

const MAX_ATTEMPTS = 100;

/**
 * POSTs one batch; retries 429/503 after the collector's Retry-After and network errors with a
 * backoff. A stop request ends the retries (the demo's data is disposable).
 */
async function post(
  path: string,
  body: unknown,
): Promise<{ accepted: number; rejected: number } | undefined> {
  const pause = (ms: number): Promise<void> =>
    sleep(ms, undefined, { signal: abort.signal }).catch(() => undefined);
  for (let attempt = 1; attempt <= MAX_ATTEMPTS && !stopping; attempt++) {
    try {
      const res = await fetch(`${config.COLLECTOR_URL}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${config.DEMO_WRITE_KEY}` },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
      const json = (await res.json().catch(() => ({}))) as {
        accepted?: number;
        rejected?: unknown[];
        message?: string;
      };
      // 400 = no event in the batch was valid; the batch is done either way.
      if (res.ok || res.status === 400)
        return { accepted: json.accepted ?? 0, rejected: json.rejected?.length ?? 0 };
      if (res.status !== 429 && res.status !== 503) {
        log.error({ status: res.status, message: json.message }, 'collector refused the request; stopping');
        process.exitCode = 1;
        stopping = true;
        return undefined;
      }
      totals.retries += 1;
      const retryAfter = Number(res.headers.get('retry-after'));
      await pause((Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : 1) * 1000);
    } catch (err) {
      totals.retries += 1;
      if (attempt % 10 === 1) log.warn({ err, url: config.COLLECTOR_URL }, 'collector unreachable; retrying');
      await pause(Math.min(5_000, 250 * 2 ** Math.min(attempt, 5)));
    }
  }
  if (!stopping) {
    log.error({ attempts: MAX_ATTEMPTS }, 'collector did not take the request; stopping');
    process.exitCode = 1;
    stopping = true;
  }
  return undefined;
}

/** Sends events in batches at no more than `perSecond`, sprinkling in invalid ones. */
async function send(events: DemoEvent[], perSecond: number): Promise<void> {
  for (let i = 0; i < events.length && !stopping; i += config.DEMO_BATCH_SIZE) {
    const started = Date.now();
    const batch: unknown[] = events.slice(i, i + config.DEMO_BATCH_SIZE);
    // Expected count, rounded at random: small live batches still get their share over time.
    const share = (batch.length * config.DEMO_BAD_EVENT_PERCENT) / 100;
    const bad = Math.floor(share) + (r() < share % 1 ? 1 : 0);
    for (let b = 0; b < bad; b++) batch.push(badEvent(r, Date.now()));
    const res = await post('/v1/events', { events: batch, sent_at: new Date().toISOString() });
    if (res) {
      totals.sent += batch.length;
      totals.accepted += res.accepted;
      totals.rejected += res.rejected;
    }
    const budgetMs = (batch.length / perSecond) * 1000;
    const spent = Date.now() - started;
    if (spent < budgetMs)
      await sleep(budgetMs - spent, undefined, { signal: abort.signal }).catch(() => undefined);
  }
}

async function identifyAll(): Promise<void> {
  // Links each signed-in user's anonymous id to the user id, as an app does at login.
  for (let i = 0; i < users.length && !stopping; i += 100) {
    await Promise.all(
      users
        .slice(i, i + 100)
        .filter((u) => u.userId !== undefined && u.profile !== undefined)
        .map((u) =>
          post('/v1/identify', {
            user_id: u.userId,
            anonymous_id: u.anonymousId,
            traits: { ...u.profile, country_code: u.place.country_code },
          }),
        ),
    );
  }
}

async function backfill(): Promise<void> {
  const first = today - config.DEMO_BACKFILL_DAYS + 1;
  log.info({ days: config.DEMO_BACKFILL_DAYS, users: users.length }, 'backfill: sending history');
  for (let day = first; day <= today && !stopping; day++) {
    const now = Date.now();
    const events = users.flatMap((u) => dayOfActivity(r, u, day, now));
    await send(events, config.DEMO_MAX_EVENTS_PER_SECOND);
    log.info(
      { day: new Date(day * DAY_MS).toISOString().slice(0, 10), events: events.length, ...totals },
      'backfill: day sent',
    );
  }
}

async function live(): Promise<void> {
  const cumulative = cumulativeWeights(users);
  const until =
    config.DEMO_DURATION_SECONDS > 0 ? Date.now() + config.DEMO_DURATION_SECONDS * 1000 : Infinity;
  log.info(
    { eventsPerSecond: config.DEMO_EVENTS_PER_SECOND, durationSeconds: config.DEMO_DURATION_SECONDS },
    'live: sending',
  );
  let lastReport = Date.now();
  while (!stopping && Date.now() < until) {
    // One request per second at most, so a low rate still arrives as a steady stream.
    const n = config.DEMO_EVENTS_PER_SECOND;
    const events = Array.from({ length: n }, () => liveEvent(r, users, cumulative, Date.now()));
    await send(events, n);
    if (Date.now() - lastReport > 30_000) {
      log.info(totals, 'live: progress');
      lastReport = Date.now();
    }
  }
}

if (config.DEMO_SEND_IDENTIFY) await identifyAll();
if (config.DEMO_MODE !== 'live') await backfill();
if (config.DEMO_MODE !== 'backfill') await live();
log.info(totals, 'demo finished');
