/**
 * Consumer at real cardinality (issues 10 and 15): rows/s end to end (first to last row in
 * fact_user_activity) when every event comes from a user nobody has seen, cold caches, fresh
 * database: each id of a batch is a miss for the identity/profile context.
 *
 * As a scenario of `npm run bench` it measures this checkout. Standalone, against a running stack,
 * it compares this checkout with a baseline commit in the same run, alternating the two so a noisy
 * shared machine affects both alike, and reports medians and the after/before ratio:
 *
 *   KAFKA_BROKERS=127.0.0.1:19092 CLICKHOUSE_URL=http://127.0.0.1:18123 \
 *     node bench/scenarios/consumer-users.ts --users 200000 --runs 3 --baseline <commit>
 *
 * The baseline's services/, clickhouse/ and schemas/ are extracted with `git archive` into a temp
 * folder (node_modules linked to this checkout's); both consumers write into databases migrated by
 * this checkout.
 */
import { execSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { produce } from '../../test/fixtures/kafka.ts';
import { benchKafka, type Ctx, freshTopic, type Row, type Scenario } from '../lib/context.ts';
import { avroNewUserMessages } from '../lib/data.ts';
import { round } from '../lib/measure.ts';
import { ROOT } from '../lib/processes.ts';
import { newestProfile, summariseProfile } from '../lib/profile.ts';
import { runConsumer } from './consumer.ts';

const BATCH_ROWS = 10_000;

async function filledTopic(ctx: Ctx, users: number): Promise<string> {
  const topic = await freshTopic(ctx, 'consumer-users', 6);
  ctx.log(`  pre-filling ${users} messages from ${users} new users`);
  await produce(ctx.kafka, topic, avroNewUserMessages(users));
  return topic;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

export const consumerUsersScenario: Scenario = async (ctx) => {
  const users = ctx.quick ? 40_000 : 200_000;
  const topic = await filledTopic(ctx, users);
  const profileDir = join(ctx.outDir, 'profiles', 'consumer-users');
  mkdirSync(profileDir, { recursive: true });
  const r = await runConsumer(ctx, { topic, total: users, batchRows: BATCH_ROWS, profileDir });
  const file = newestProfile(profileDir);
  return {
    id: '9',
    title: 'Consumer at real cardinality: every event from a new user',
    notes: [
      `${users} Avro activity messages from ${users} distinct never-seen 18-character user ids, no profile attributes; fresh database, cold caches; rows/s from the first to the last row in fact_user_activity (a --cpu-prof run, so a little below an unprofiled one).`,
    ],
    rows: [
      {
        case: `consumer, ${users} new users, batch ${BATCH_ROWS}`,
        values: { 'rows/s': round(r.rowsPerS), seconds: round(r.seconds, 1), 'RSS MB': round(r.rssMb) },
      },
    ],
    targets: [],
    profiles: file
      ? [{ what: 'consumer, every event from a new user', summary: summariseProfile(file) }]
      : [],
  };
};

/** `git archive` of `rev`'s code into a temp folder; returns the path of its consumer main.ts. */
export function checkout(rev: string): { script: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'consumer-baseline-'));
  execSync(`git archive ${rev} services clickhouse schemas package.json | tar -x -C ${dir}`, { cwd: ROOT });
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  return { script: join(dir, 'services/consumer/main.ts'), remove: () => rmSync(dir, { recursive: true }) };
}

async function compare(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      users: { type: 'string', default: '200000' },
      runs: { type: 'string', default: '3' },
      baseline: { type: 'string', default: 'main' },
      profile: { type: 'boolean', default: false },
    },
  });
  const users = Number(args.users);
  const runs = Number(args.runs);
  const brokers = process.env.KAFKA_BROKERS ?? '127.0.0.1:9092';
  const outDir = join(ROOT, 'bench', 'out', `consumer-users-${Date.now()}`);
  mkdirSync(outDir, { recursive: true });
  const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
  const ctx: Ctx = {
    quick: false,
    kafkaBrokers: brokers,
    clickhouseUrl: process.env.CLICKHOUSE_URL ?? 'http://127.0.0.1:8123',
    outDir,
    kafka: benchKafka(brokers),
    log,
    shared: new Map(),
  };
  const base = checkout(args.baseline);
  const rates: Record<'before' | 'after', number[]> = { before: [], after: [] };
  try {
    // One topic for every run: each consumer group reads it all from the start.
    const topic = await filledTopic(ctx, users);
    for (let i = 0; i < runs; i += 1) {
      for (const which of i % 2 === 0 ? (['before', 'after'] as const) : (['after', 'before'] as const)) {
        const profileDir = args.profile ? join(outDir, `${which}-${i}`) : undefined;
        if (profileDir) mkdirSync(profileDir, { recursive: true });
        const r = await runConsumer(ctx, {
          topic,
          total: users,
          batchRows: BATCH_ROWS,
          ...(which === 'before' ? { script: base.script } : {}),
          ...(profileDir ? { profileDir } : {}),
        });
        rates[which].push(r.rowsPerS);
        log(
          `  run ${i + 1} ${which}: ${round(r.rowsPerS)} rows/s, ${round(r.seconds, 1)} s, RSS ${round(r.rssMb)} MB`,
        );
        if (profileDir) {
          const file = newestProfile(profileDir);
          if (file) log(JSON.stringify(summariseProfile(file, 15), null, 1));
        }
      }
    }
  } finally {
    base.remove();
  }
  const rows: Row[] = (['before', 'after'] as const).map((w) => ({
    case: w,
    values: { 'median rows/s': round(median(rates[w])), runs: rates[w].map((x) => round(x)).join(' ') },
  }));
  process.stdout.write(
    `${JSON.stringify({ users, runs, baseline: args.baseline, rows, ratio: round(median(rates.after) / median(rates.before), 2) }, null, 1)}\n`,
  );
  process.exit(0);
}

if (import.meta.url === `file://${process.argv[1]}`) await compare();
