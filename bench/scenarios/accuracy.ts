/**
 * Scenario 5, accuracy: relative error of rolling DAU/WAU/MAU from the uniq sketches (the query
 * API's SQL) vs the exact answer, per day over 90 days, overall slice, at three population sizes.
 * The largest reuses scenario 4's database when that ran with the same size.
 */
import type { ActiveUsersRequest } from '../../services/query/sql/builder.ts';
import { loadSynthetic } from '../../test/fixtures/synthetic.ts';
import { compare, exactQuery, rollupSql, timedQuery } from '../lib/active-users.ts';
import { maxTarget, migratedDatabase, type Row, type Scenario } from '../lib/context.ts';
import { round } from '../lib/measure.ts';
import { ninetyDays } from './queries.ts';

/** clickhouse/README.md's documented bound for uniq. */
const BOUND_PERCENT = 1;

export const accuracyScenario: Scenario = async (ctx) => {
  const levels = ctx.quick ? [1_000, 100_000] : [1_000, 100_000, 1_000_000];
  const rows: Row[] = [];
  const targets = [];
  const notes: string[] = [];
  const req: ActiveUsersRequest = ninetyDays();
  for (const users of levels) {
    let database: string;
    if (ctx.shared.get('queries.users') === users) {
      database = String(ctx.shared.get('queries.database'));
    } else {
      const db = await migratedDatabase(ctx, `accuracy_${users}`);
      ctx.log(`  loading ${users * 10} events for ${users} users`);
      await loadSynthetic(db.client, { events: users * 10, users, chunk: 1_000_000, seed: 5, log: ctx.log });
      await db.close();
      database = db.name;
    }
    try {
      const sketch = await timedQuery(ctx.clickhouseUrl, database, rollupSql(req));
      const exact = await exactQuery(ctx.clickhouseUrl, database, req, users >= 1_000_000 ? 8 : 1);
      const e = compare(sketch.rows, exact.rows, []);
      rows.push({
        case: `${users.toLocaleString('en-US')} user ids`,
        values: {
          'days compared': e.compared,
          'max exact MAU': e.maxExact.mau,
          'max rel err DAU %': round(e.maxRel.dau * 100, 3),
          'max rel err WAU %': round(e.maxRel.wau * 100, 3),
          'max rel err MAU %': round(e.maxRel.mau * 100, 3),
          'mean rel err MAU %': round(e.meanRel.mau * 100, 3),
          'missing days': e.missing,
        },
      });
      targets.push(
        maxTarget(
          `worst WAU/MAU error, ${users.toLocaleString('en-US')} user ids (README bound)`,
          Math.max(e.maxRel.wau, e.maxRel.mau) * 100,
          BOUND_PERCENT,
          '%',
        ),
      );
    } catch (err) {
      // One level failing (e.g. the exact query over its memory limit) must not hide the others.
      notes.push(`${users.toLocaleString('en-US')} user ids: ${(err as Error).message.slice(0, 200)}`);
    }
  }
  return {
    id: '5',
    title: 'Accuracy of rolling WAU/MAU from the sketches',
    notes: [
      'Synthetic users, 10 events per user id on average (power law), 120 days; every day of the 90-day series compared with the exact uniqExact answer from the fact table (overall slice, UTC, rolling windows).',
      '"max exact MAU" is the largest exact 30-day distinct count in the series: the population size the sketch actually merged.',
      'The exact answer at 1M user ids runs as 8 user shards (see scenario 4).',
      ...(ctx.quick ? ['Quick mode: 1k and 100k user ids only (full mode adds 1M).'] : []),
      ...notes,
    ],
    rows,
    targets,
    profiles: [],
  };
};
