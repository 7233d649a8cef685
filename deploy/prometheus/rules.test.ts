/**
 * The alert rules and the Prometheus configuration, checked by promtool (from Debian's package,
 * fetched by deploy/tools/install.sh): the config with its rule files loads, the rules parse, and
 * the unit tests in tests/ pass: every alert fires on a synthetic series that breaks its condition
 * and stays quiet on a healthy one. Also checked here: each alert has both kinds of test, and
 * every metric a rule or an ops panel reads is one a service defines, grouped by labels it has.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ROOT } from '../docker/runtime-graph.ts';

const DIR = join(ROOT, 'deploy/prometheus');
const ruleFiles = readdirSync(join(DIR, 'rules')).map((f) => join(DIR, 'rules', f));
const testFiles = readdirSync(join(DIR, 'tests')).map((f) => join(DIR, 'tests', f));

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: { severity?: string };
  annotations?: { summary?: string; description?: string };
}
const rules: Rule[] = ruleFiles.flatMap((f) =>
  (parse(readFileSync(f, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules),
);

const promtool = execFileSync('bash', [join(ROOT, 'deploy/tools/install.sh'), 'promtool'], {
  encoding: 'utf8',
}).trim();
const run = (...args: string[]) => spawnSync(promtool, args, { encoding: 'utf8', cwd: DIR });

/** All of the services' TypeScript (metric names are defined as string literals there). */
function serviceSources(dir = join(ROOT, 'services')): string {
  return readdirSync(dir, { withFileTypes: true })
    .map((e) =>
      e.isDirectory()
        ? serviceSources(join(dir, e.name))
        : e.name.endsWith('.ts')
          ? readFileSync(join(dir, e.name), 'utf8')
          : '',
    )
    .join('\n');
}

describe('prometheus rules', () => {
  it('load with the configuration compose runs (promtool check config)', () => {
    // The config names the rules where compose mounts them; point it at the repository's copy.
    const dir = mkdtempSync(join(tmpdir(), 'prom-'));
    const config = readFileSync(join(DIR, 'prometheus.yml'), 'utf8').replace(
      '/etc/prometheus/rules/*.yml',
      join(DIR, 'rules', '*.yml'),
    );
    writeFileSync(join(dir, 'prometheus.yml'), config);
    const r = run('check', 'config', join(dir, 'prometheus.yml'));
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(`SUCCESS: ${rules.length} rules found`);
    expect(r.status).toBe(0);
  });

  it('parse (promtool check rules), and a broken expression is refused (the check is live)', () => {
    expect(run('check', 'rules', ...ruleFiles).status).toBe(0);
    const dir = mkdtempSync(join(tmpdir(), 'prom-'));
    writeFileSync(
      join(dir, 'broken.yml'),
      'groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: rate(up[5m]\n',
    );
    expect(run('check', 'rules', join(dir, 'broken.yml')).status).not.toBe(0);
  });

  it('pass their unit tests (promtool test rules)', () => {
    const r = run('test', 'rules', ...testFiles);
    expect(`${r.stdout}${r.stderr}`).not.toContain('FAILED');
    expect(r.status).toBe(0);
  });

  it('cover what an operator needs, each with a severity, a summary and a description', () => {
    expect(rules.map((r) => r.alert).sort()).toEqual([
      'CollectorKafkaPublishFailing',
      'CollectorServerErrors',
      'ConsumerClickHouseInsertsFailing',
      'ConsumerDeadLetterRate',
      'ConsumerDeadLetterSendsFailing',
      'ConsumerLagGrowing',
      'ConsumerPartitionStuck',
      'PipelineNotReady',
      'PipelineTargetDown',
      'RefresherBehind',
      'RefresherDaysPending',
    ]);
    for (const r of rules) {
      expect(['critical', 'warning'], r.alert).toContain(r.labels?.severity);
      expect(r.annotations?.summary, r.alert).toBeTruthy();
      expect(r.annotations?.description, r.alert).toBeTruthy();
    }
  });

  it('each have a unit test where the alert fires and one where it stays quiet', () => {
    const cases = testFiles.flatMap((f) =>
      (
        parse(readFileSync(f, 'utf8')) as {
          tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
        }
      ).tests.flatMap((t) => t.alert_rule_test ?? []),
    );
    for (const r of rules) {
      const mine = cases.filter((c) => c.alertname === r.alert);
      expect(
        mine.some((c) => c.exp_alerts.length > 0),
        `${r.alert} fires`,
      ).toBe(true);
      expect(
        mine.some((c) => c.exp_alerts.length === 0),
        `${r.alert} stays quiet`,
      ).toBe(true);
    }
  });
});

/**
 * Labels each metric carries: its own labelNames where a service defines it, plus what every
 * series has (the registry's `service` default label, Prometheus's job and instance) and `le` on
 * a histogram's buckets.
 */
function labelsOf(sources: string, metric: string): Set<string> | undefined {
  const base = metric.replace(/_(bucket|sum|count)$/, '');
  let at = sources.indexOf(`name: '${base}'`);
  if (at < 0) {
    // The HTTP metrics are named in ops-http.ts's HTTP_METRICS table and defined once for all services.
    const key = new RegExp(`(requests|duration): '${base}'`).exec(sources)?.[1];
    if (key !== undefined) at = sources.indexOf(`name: HTTP_METRICS[service].${key}`);
  }
  if (at < 0) return undefined;
  const definition = sources.slice(at, sources.indexOf('registers', at));
  const own = /labelNames: \[([^\]]*)\]/.exec(definition)?.[1] ?? '';
  const labels = new Set([
    'service',
    'job',
    'instance',
    ...[...own.matchAll(/'(\w+)'/g)].map((m) => m[1] ?? ''),
  ]);
  if (metric.endsWith('_bucket')) labels.add('le');
  return labels;
}

const METRIC = /\b(?:collector|consumer|refresher|query)_[a-z_]+/g;

/**
 * The metrics under each `by (...)` / `without (...)` aggregation and its labels: a label the
 * metric lacks makes a panel empty or an alert silent, without any error.
 */
function groupings(expr: string): { metric: string; labels: string[] }[] {
  const out: { metric: string; labels: string[] }[] = [];
  for (const m of expr.matchAll(
    /\b(?:by|without)\s*\(([^)]*)\)\s*\(((?:[^()]|\([^()]*(?:\([^()]*\))*[^()]*\))*)\)/g,
  )) {
    const labels = (m[1] ?? '')
      .split(',')
      .map((l) => l.trim())
      .filter((l) => l !== '');
    for (const metric of (m[2] ?? '').match(METRIC) ?? []) out.push({ metric, labels });
  }
  return out;
}

describe('PromQL of the alert rules and the ops dashboard', () => {
  const sources = serviceSources();
  const ops = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/dashboards/ops.json'), 'utf8')) as {
    panels: { title: string; targets: { expr?: string }[] }[];
  };
  const exprs = [
    ...rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr })),
    ...ops.panels.flatMap((p) =>
      p.targets.flatMap((t) => (t.expr ? [{ where: `ops.json ${p.title}`, expr: t.expr }] : [])),
    ),
  ];

  it('parses (the dashboard expressions checked by promtool as recording rules)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'prom-'));
    const rulesOf = exprs.map((e, i) => ({ record: `grafana:panel_${i}`, expr: e.expr }));
    writeFileSync(
      join(dir, 'ops.yml'),
      JSON.stringify({ groups: [{ name: 'grafana-ops', rules: rulesOf }] }),
    );
    const r = run('check', 'rules', join(dir, 'ops.yml'));
    expect(`${r.stdout}${r.stderr}`).toContain(`SUCCESS: ${exprs.length} rules found`);
  });

  it('reads only metrics the services define, grouped by labels those metrics carry', () => {
    const names = new Set(exprs.flatMap((e) => e.expr.match(METRIC) ?? []));
    expect(names.size).toBeGreaterThanOrEqual(20);
    for (const n of names) expect(labelsOf(sources, n), n).toBeDefined();
    const checked = exprs.flatMap((e) => groupings(e.expr).map((g) => ({ ...g, where: e.where })));
    expect(checked.length).toBeGreaterThanOrEqual(20);
    for (const { where, metric, labels } of checked) {
      const carried = labelsOf(sources, metric) ?? new Set();
      for (const l of labels) expect(carried.has(l), `${where}: ${metric} has no label ${l}`).toBe(true);
    }
  });
});
