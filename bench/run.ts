/**
 * `npm run bench [-- --quick] [-- --only 1,4]`: starts a PRIVATE Kafka + ClickHouse (own ports and
 * data folder, so the shared dev stack and other test runs are not disturbed), runs each scenario,
 * prints a table, writes bench/out/<run>/results.json and bench/RESULTS.md, and destroys the stack.
 * Scenarios run one after another; each is bounded in count and time. `--only 1,3` runs some
 * (3 needs 1); `--no-results-md` leaves RESULTS.md alone (development runs); `--add <results.json>`
 * puts a saved run's scenarios into RESULTS.md beside the full run's (the scale ladder runs alone).
 */
import { execSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { privateStack } from '../deploy/local/private-stack.ts';
import { benchKafka, type Ctx, type Scenario, type ScenarioResult } from './lib/context.ts';
import { ROOT } from './lib/processes.ts';
import { addSections, printResults, type Report, renderMarkdown } from './report.ts';
import { accuracyScenario } from './scenarios/accuracy.ts';
import { collectorScenario } from './scenarios/collector.ts';
import { consumerScenario } from './scenarios/consumer.ts';
import { consumerUsersScenario } from './scenarios/consumer-users.ts';
import { endToEndScenario } from './scenarios/end-to-end.ts';
import { kafkaClientsScenario } from './scenarios/kafka-clients.ts';
import { ladderScenario } from './scenarios/ladder.ts';
import { manyUsersScenario } from './scenarios/many-users.ts';
import { overloadScenario } from './scenarios/overload.ts';
import { queriesScenario } from './scenarios/queries.ts';

const SCENARIOS: readonly [string, Scenario][] = [
  ['1', collectorScenario],
  ['2', consumerScenario],
  ['3', endToEndScenario],
  ['4', queriesScenario],
  ['5', accuracyScenario],
  ['6', kafkaClientsScenario],
  ['7', manyUsersScenario],
  ['8', overloadScenario],
  ['9', consumerUsersScenario],
  ['10', ladderScenario],
];

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    'no-results-md': { type: 'boolean', default: false },
    /** Re-renders bench/RESULTS.md from a saved results.json (after a report-format change). */
    render: { type: 'string' },
    /** Puts a saved separate run's scenarios into bench/RESULTS.md, replacing their sections. */
    add: { type: 'string' },
  },
});
if (args.render !== undefined || args.add !== undefined) {
  const resultsMd = join(ROOT, 'bench', 'RESULTS.md');
  const saved = JSON.parse(readFileSync(args.render ?? args.add ?? '', 'utf8')) as Report;
  writeFileSync(
    resultsMd,
    args.add !== undefined ? addSections(readFileSync(resultsMd, 'utf8'), saved) : renderMarkdown(saved),
  );
  process.exit(0);
}
const only = args.only?.split(',').map((s) => s.trim());

function version(cmd: string): string {
  try {
    return (
      execSync(cmd, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
        .trim()
        .split('\n')[0] ?? ''
    );
  } catch {
    return 'unknown';
  }
}

const started = new Date();
// The code under test: other work lands in this checkout while benchmarks run.
const revision = `${version('git rev-parse --short HEAD')}${
  version('git status --porcelain -- services clickhouse schemas | head -1') === ''
    ? ''
    : ' + uncommitted changes'
}`;
const runId = started.toISOString().replace(/[:.]/g, '-');
const outDir = join(ROOT, 'bench', 'out', runId);
mkdirSync(outDir, { recursive: true });
const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);

const stack = await privateStack('bench', log);
const results: ScenarioResult[] = [];
let clickhouseVersion = 'unknown';
try {
  log('starting private Kafka + ClickHouse');
  await Promise.all([stack.startKafka(), stack.startClickhouse()]);
  clickhouseVersion = (await (await fetch(`${stack.clickhouseUrl}/?query=SELECT%20version()`)).text()).trim();
  const ctx: Ctx = {
    quick: args.quick ?? false,
    kafkaBrokers: stack.kafkaBrokers,
    clickhouseUrl: stack.clickhouseUrl,
    outDir,
    kafka: benchKafka(stack.kafkaBrokers),
    log,
    shared: new Map(),
  };
  for (const [id, scenario] of SCENARIOS) {
    if (only && !only.includes(id)) continue;
    log(`scenario ${id}`);
    const t = performance.now();
    try {
      const r = await scenario(ctx);
      results.push({ ...r, seconds: (performance.now() - t) / 1000 });
    } catch (err) {
      log(`scenario ${id} failed: ${(err as Error).stack ?? String(err)}`);
      results.push({
        id,
        title: `scenario ${id}`,
        notes: [],
        rows: [],
        targets: [],
        profiles: [],
        seconds: (performance.now() - t) / 1000,
        error: (err as Error).message,
      });
    }
  }
} finally {
  log('destroying the private stack');
  await stack.destroy();
}

const cpu = cpus()[0];
const machine = {
  nproc: cpus().length,
  memoryGb: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
  cpu: cpu?.model ?? 'unknown',
  node: process.version,
  kafka: version(`ls ${ROOT}.data/kafka-libs | grep -E '^kafka_2' | head -1`),
  clickhouse: clickhouseVersion,
  os: version('uname -sr'),
  revision,
};
const command = `npm run bench${args.quick ? ' -- --quick' : ''}${only ? ` -- --only ${only.join(',')}` : ''}`;
const report = { date: started.toISOString(), command, quick: args.quick, machine, results };
writeFileSync(join(outDir, 'results.json'), `${JSON.stringify(report, null, 2)}\n`);
printResults(report);
if (!args['no-results-md']) {
  writeFileSync(join(ROOT, 'bench', 'RESULTS.md'), renderMarkdown(report));
  log('wrote bench/RESULTS.md');
}
log(`wrote ${join('bench', 'out', runId, 'results.json')}`);
process.exit(results.some((r) => r.error !== undefined) ? 1 : 0);
