/** The run's table on stdout and bench/RESULTS.md, both from the same results object. */
import type { ScenarioResult } from './lib/context.ts';

export interface Report {
  readonly date: string;
  readonly command: string;
  readonly quick: boolean | undefined;
  readonly machine: Readonly<Record<string, string | number>>;
  readonly results: readonly ScenarioResult[];
}

function columnsOf(r: ScenarioResult): string[] {
  const cols: string[] = [];
  for (const row of r.rows) for (const k of Object.keys(row.values)) if (!cols.includes(k)) cols.push(k);
  return cols;
}

function cell(v: number | string | undefined): string {
  if (v === undefined) return '';
  if (typeof v === 'string') return v;
  return Number.isInteger(v) ? v.toLocaleString('en-US') : String(v);
}

function table(header: readonly string[], body: readonly (readonly string[])[]): string[] {
  return [
    `| ${header.join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...body.map((r) => `| ${r.join(' | ')} |`),
  ];
}

export function printResults(report: Report): void {
  for (const r of report.results) {
    process.stdout.write(`\n== ${r.id}. ${r.title}${r.error ? ` FAILED: ${r.error}` : ''}\n`);
    const cols = columnsOf(r);
    const widths = [
      Math.max(4, ...r.rows.map((x) => x.case.length)),
      ...cols.map((c) => Math.max(c.length, ...r.rows.map((x) => cell(x.values[c]).length))),
    ];
    const line = (cells: string[]) => `${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ')}\n`;
    process.stdout.write(line(['case', ...cols]));
    for (const row of r.rows) process.stdout.write(line([row.case, ...cols.map((c) => cell(row.values[c]))]));
    for (const t of r.targets)
      process.stdout.write(
        `  ${t.met ? 'MET   ' : 'MISSED'} ${t.name}: ${t.measured} (target ${t.target}; ${t.margin})\n`,
      );
  }
}

export function renderMarkdown(report: Report): string {
  const m = report.machine;
  const out: string[] = [
    '# Benchmark results',
    '',
    `Produced by \`${report.command}\` (bench/run.ts) on ${report.date}. Every number below comes from`,
    'that one run; ratios compare a stage with its limit measured in the same run on the same',
    'machine, which is what stays meaningful on a noisy shared 2-core box.',
    report.quick
      ? "\n**Quick mode**: smaller sizes and shorter loads (see each scenario's notes); not the full run.\n"
      : '',
    '## Machine',
    '',
    ...table(
      ['nproc', 'memory', 'CPU', 'Node', 'Kafka', 'ClickHouse', 'OS', 'code under test (git)'],
      [
        [
          String(m.nproc),
          `${m.memoryGb} GB`,
          String(m.cpu),
          String(m.node),
          String(m.kafka),
          String(m.clickhouse),
          String(m.os),
          String(m.revision ?? 'not recorded'),
        ],
      ],
    ),
    '',
    'Kafka and ClickHouse are a private stack started by the bench (deploy/local/private-stack.ts);',
    'other work on the machine while this ran, if any, is said in the hand-written notes below.',
    '',
    // The soak runs on its own (30 minutes) and writes its own file, so re-rendering this one keeps it.
    '**Soak** (`npm run test:soak`, bench/soak.ts): see [SOAK.md](SOAK.md).',
    '',
    '## Targets',
    '',
    ...table(
      ['scenario', 'target', 'goal', 'measured', 'met', 'by how much'],
      report.results.flatMap((r) =>
        r.targets.map((t) => [r.id, t.name, t.target, t.measured, t.met ? 'yes' : '**no**', t.margin]),
      ),
    ),
    '',
  ];
  for (const r of report.results) out.push(`## ${r.id}. ${r.title}`, '', ...renderSection(r));
  return `${out.join('\n')}\n`;
}

/** One scenario's section below its heading: error, notes, table, profiles, time. */
function renderSection(r: ScenarioResult): string[] {
  const out: string[] = [];
  if (r.error) out.push(`**Failed**: ${r.error}`, '');
  for (const n of r.notes) out.push(`- ${n}`);
  if (r.notes.length > 0) out.push('');
  if (r.rows.length > 0) {
    const cols = columnsOf(r);
    out.push(
      ...table(
        ['case', ...cols],
        r.rows.map((row) => [row.case, ...cols.map((c) => cell(row.values[c]))]),
      ),
      '',
    );
  }
  for (const p of r.profiles) {
    const s = p.summary;
    out.push(
      `**Profile**: ${p.what}; ${Math.round(s.totalMs)} ms sampled, ${Math.round(s.busyMs)} ms busy (shares are of busy time, startup included), \`${s.file}\`.`,
      '',
    );
    out.push(
      ...table(
        ['area (self time)', 'ms', 'share'],
        s.areas.map((a) => [a.area, String(Math.round(a.ms)), `${(a.share * 100).toFixed(1)}%`]),
      ),
      '',
    );
    out.push(
      ...table(
        ['top functions (self time)', 'ms', 'share'],
        s.functions.map((f) => [
          `\`${f.frame}\``,
          String(Math.round(f.ms)),
          `${(f.share * 100).toFixed(1)}%`,
        ]),
      ),
      '',
    );
  }
  if (r.seconds !== undefined) out.push(`_Scenario time: ${Math.round(r.seconds)} s._`, '');
  return out;
}

/**
 * `md` (a RESULTS.md) with the scenarios of a separate run put in: each replaces the section of
 * its id, or goes before the hand-written sections at the end. Its first line names the run, since
 * the file's header names another one. For scenarios too long to run with the others (10, the ladder).
 */
export function addSections(md: string, report: Report): string {
  let out = md;
  for (const r of report.results) {
    const section = [
      `## ${r.id}. ${r.title}`,
      '',
      `_A separate run: \`${report.command}\` on ${report.date}, code ${report.machine.revision ?? 'not recorded'}, ${report.machine.cpu}${report.quick ? ', quick mode' : ''} (the rest of this file is the run named at the top)._`,
      '',
      ...renderSection(r),
    ].join('\n');
    const at = out.indexOf(`\n## ${r.id}. `);
    if (at >= 0) {
      const next = out.indexOf('\n## ', at + 1);
      out = `${out.slice(0, at + 1)}${section}\n${next >= 0 ? out.slice(next) : ''}`;
    } else {
      const handWritten = out.indexOf('\n## Before and after');
      out =
        handWritten >= 0
          ? `${out.slice(0, handWritten + 1)}${section}\n${out.slice(handWritten)}`
          : `${out.trimEnd()}\n\n${section}\n`;
    }
  }
  return out;
}
