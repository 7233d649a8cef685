/**
 * No Docker engine runs these files here, so they are checked statically: they parse, every image
 * is pinned, every service that keeps running has a healthcheck, every mounted file exists,
 * Prometheus scrapes what compose runs, and every metric, datasource and table the Grafana
 * dashboards name exists in the code and migrations (so a rename breaks this test, not a
 * dashboard nobody looks at).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { exposureProblems, readCollectorConfig } from '../../services/collector/config.ts';
import { WriteKeys } from '../../services/collector/http/write-keys.ts';
import { consumerSpec } from '../../services/consumer/config.ts';
import { readConfig } from '../../services/lib/config.ts';
import { readQueryConfig } from '../../services/query/config.ts';
import { readRefresherConfig } from '../../services/refresher/config.ts';
import { SERVICE_PORTS } from '../docker/healthcheck.ts';
import { configVariables, ENTRY_POINTS, getRoutes, runtimeGraph } from '../docker/runtime-graph.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const read = (p: string): string => readFileSync(join(ROOT, p), 'utf8');

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  read_only?: boolean;
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  restart?: string;
}

const compose = parse(read('docker-compose.yml'), { merge: true }) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};
const services = compose.services;

/** The example secrets (.env.example), as `docker compose` would read a .env copied from it. */
const EXAMPLE_ENV: Record<string, string> = Object.fromEntries(
  read('.env.example')
    .split('\n')
    .filter((l) => /^[A-Z_]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
);

/** `${VAR}` / `${VAR:?message}` replaced as compose does; a variable .env.example lacks throws. */
function interpolate(value: string): string {
  return value.replace(/\$\{(\w+)(?::\?[^}]*)?\}/g, (_m, name: string) => {
    const v = EXAMPLE_ENV[name];
    if (v === undefined) throw new Error(`${name} is used but not in .env.example`);
    return v;
  });
}

/** A service's environment after interpolation. */
const envOf = (name: string): Record<string, string> =>
  Object.fromEntries(
    Object.entries(services[name]?.environment ?? {}).map(([k, v]) => [k, interpolate(String(v))]),
  );

/** Files of the repository whose contents mention `name` (the metric's definition site). */
function defined(name: string, dirs: readonly string[]): boolean {
  const walk = (dir: string): string[] =>
    readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
    );
  return dirs.flatMap(walk).some((f) => read(f).includes(`'${name}'`));
}

describe('docker-compose.yml', () => {
  it('pins every image to a version', () => {
    for (const [name, s] of Object.entries(services)) {
      expect(s.image, name).toMatch(/^[\w./-]+:v?\d+(\.\d+)+[\w.-]*$/);
    }
  });

  it('has a healthcheck on every long-running service and only one-shot jobs without', () => {
    for (const [name, s] of Object.entries(services)) {
      if (s.restart === 'no') continue;
      expect(s.healthcheck?.test, name).toBeDefined();
    }
    expect(
      Object.entries(services)
        .filter(([, s]) => s.restart === 'no')
        .map(([n]) => n)
        .sort(),
    ).toEqual(['demo', 'migrate']);
  });

  it('runs the services from files that exist, after the jobs they need', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const dep of Object.keys(s.depends_on ?? {})) expect(Object.keys(services), name).toContain(dep);
      const script = s.command?.find((c) => c.endsWith('.ts'));
      if (script) expect(existsSync(join(ROOT, script)), `${name}: ${script}`).toBe(true);
      for (const v of s.volumes ?? []) {
        const [src = ''] = v.split(':');
        if (src.startsWith('.')) expect(existsSync(join(ROOT, src)), `${name}: ${src}`).toBe(true);
        else expect(Object.keys(compose.volumes), `${name}: ${src}`).toContain(src);
      }
    }
    expect(services.query?.depends_on?.migrate?.condition).toBe('service_completed_successfully');
    expect(services.consumer?.depends_on?.migrate?.condition).toBe('service_completed_successfully');
    expect(services.refresher?.depends_on?.migrate?.condition).toBe('service_completed_successfully');
  });

  it('gives each service a configuration its own validation accepts, the start-up exposure checks included', () => {
    const collector = readCollectorConfig(envOf('collector'));
    expect(exposureProblems(collector, new WriteKeys({ fromEnv: collector.WRITE_KEYS }))).toEqual([]);
    expect(collector.INSECURE_DEV).toBe(false);
    const query = readQueryConfig(envOf('query'));
    expect(query.INSECURE_DEV).toBe(false);
    expect(query.QUERY_TOKENS.length).toBeGreaterThan(0);
    expect(() => readConfig(consumerSpec, envOf('consumer'))).not.toThrow();
    expect(readRefresherConfig(envOf('refresher')).timeZones).toEqual(['UTC']);
    // The demo sends with one of the collector's keys.
    expect(collector.WRITE_KEYS.has(envOf('demo').DEMO_WRITE_KEY ?? '')).toBe(true);
  });

  it('takes every secret from .env (git-ignored, from .env.example), and leaves no password empty', () => {
    // Every variable compose or Grafana's provisioning uses is in the example.
    for (const file of ['docker-compose.yml', 'deploy/grafana/provisioning/datasources/datasources.yml']) {
      for (const [, name] of read(file).matchAll(/\$\{?(\w+)/g)) {
        expect(EXAMPLE_ENV, `${file}: ${name}`).toHaveProperty(name as string);
      }
    }
    expect(read('.gitignore').split('\n')).toContain('.env');
    expect(envOf('clickhouse').CLICKHOUSE_PASSWORD).not.toBe('');
    expect(services.clickhouse?.environment).not.toHaveProperty('CLICKHOUSE_SKIP_USER_SETUP');
    for (const name of ['migrate', 'consumer', 'refresher'])
      expect(envOf(name).CLICKHOUSE_PASSWORD, name).not.toBe('');
    expect(envOf('query').CLICKHOUSE_PASSWORD).toBe(EXAMPLE_ENV.ANALYTICS_READER_PASSWORD);
    const users = read('deploy/compose/clickhouse-users.xml');
    expect(users).not.toMatch(/<password>\s*<\/password>/);
    expect(users).not.toContain('::/0');
    for (const user of ['ANALYTICS_READER_PASSWORD', 'GRAFANA_READER_PASSWORD']) {
      expect(users).toContain(`<password from_env="${user}"/>`);
      expect(envOf('clickhouse')[user]).toBe(EXAMPLE_ENV[user]);
    }
    expect(services.grafana?.environment?.GF_AUTH_ANONYMOUS_ENABLED).toBe('false');
    expect(envOf('grafana').GF_SECURITY_ADMIN_PASSWORD).not.toBe('');
    expect(read('deploy/grafana/provisioning/datasources/datasources.yml')).toContain(
      'password: $GRAFANA_READER_PASSWORD',
    );
  });

  it('gives the query API the read-only user the ClickHouse users file defines', () => {
    expect(services.query?.environment?.CLICKHOUSE_USER).toBe('analytics_reader');
    const users = read('deploy/compose/clickhouse-users.xml');
    expect(users).toMatch(/<reader>\s*<readonly>1<\/readonly>/);
    expect(users).toMatch(/<analytics_reader>[\s\S]*<profile>reader<\/profile>/);
    for (const limit of ['max_execution_time', 'max_memory_usage', 'max_rows_to_read']) {
      expect(users).toContain(`<${limit}>`);
    }
  });
});

describe('the pipeline image in compose', () => {
  const version = (JSON.parse(read('package.json')) as { version: string }).version;
  const apps = Object.entries(services).filter(([, s]) => s.build !== undefined);

  it('builds every app service from the Dockerfile, one image, read-only, no source mounted', () => {
    expect(apps.map(([n]) => n).sort()).toEqual([
      'collector',
      'consumer',
      'demo',
      'migrate',
      'query',
      'refresher',
    ]);
    for (const [name, s] of apps) {
      expect(s.build, name).toEqual({ context: '.', dockerfile: 'Dockerfile' });
      expect(s.image, name).toBe(`activity-pipeline:${version}`);
      expect(s.read_only, name).toBe(true);
      expect(s.volumes, name).toBeUndefined();
    }
    // Anything else is a stock image: no service runs Node from a mounted checkout.
    for (const [name, s] of Object.entries(services)) {
      if (s.build === undefined) expect(s.command?.[0], name).not.toBe('node');
    }
  });

  it('runs entry points the image holds, with only variables their config reads', () => {
    for (const [name, s] of apps) {
      const entry = s.command?.[1] ?? '';
      expect(s.command?.[0], name).toBe('node');
      expect(ENTRY_POINTS, name).toContain(entry);
      const reads = configVariables(runtimeGraph(entry).files);
      for (const v of Object.keys(s.environment ?? {})) expect(reads.has(v), `${name}: ${v}`).toBe(true);
    }
  });

  it('checks health on a route the service serves, on the port its environment gives it', () => {
    for (const [name, s] of apps) {
      if (s.restart === 'no') continue;
      const script = s.healthcheck?.test.at(-1) ?? '';
      const [, port, path = ''] = /http:\/\/127\.0\.0\.1:(\d+)(\/\w+)/.exec(script) ?? [];
      const routes = getRoutes(runtimeGraph(s.command?.[1] ?? '').files);
      expect([...routes], name).toContain(path);
      const own = SERVICE_PORTS.find((p) => p.service === name);
      expect(s.environment?.[own?.variable ?? ''], name).toBe(port);
    }
  });
});

describe('prometheus', () => {
  it('scrapes every service that exposes /metrics, on the port compose gives it', () => {
    const prom = parse(read('deploy/prometheus/prometheus.yml')) as {
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
    };
    const targets = prom.scrape_configs.flatMap((c) => c.static_configs.flatMap((s) => s.targets));
    expect(targets).toEqual(expect.arrayContaining(['collector:8080', 'consumer:9464', 'query:8081']));
    expect(services.collector?.environment?.PORT).toBe('8080');
    expect(services.consumer?.environment?.CONSUMER_HTTP_PORT).toBe('9464');
    expect(services.query?.environment?.PORT).toBe('8081');
  });

  it("probes each long-running service's /readyz through the blackbox exporter compose runs", () => {
    const prom = parse(read('deploy/prometheus/prometheus.yml')) as {
      scrape_configs: {
        job_name: string;
        static_configs: { targets: string[] }[];
        relabel_configs?: { replacement?: string }[];
      }[];
    };
    const readyz = prom.scrape_configs.find((c) => c.job_name === 'readyz');
    const expected = SERVICE_PORTS.map((p) => `http://${p.service}:${envOf(p.service)[p.variable]}/readyz`);
    expect(readyz?.static_configs.flatMap((s) => s.targets).sort()).toEqual(expected.sort());
    const blackbox = readyz?.relabel_configs?.find((r) => r.replacement?.includes(':'))?.replacement ?? '';
    expect(Object.keys(services)).toContain(blackbox.split(':')[0]);
  });
});

describe('grafana provisioning', () => {
  const datasources = (
    parse(read('deploy/grafana/provisioning/datasources/datasources.yml')) as {
      datasources: { uid: string; type: string; jsonData: Record<string, unknown> }[];
    }
  ).datasources;
  const dashboards = readdirSync(join(ROOT, 'deploy/grafana/dashboards')).map((f) => ({
    file: f,
    json: JSON.parse(read(join('deploy/grafana/dashboards', f))) as {
      uid: string;
      panels: { id: number; datasource: { uid: string }; targets: { expr?: string; rawSql?: string }[] }[];
    },
  }));

  it('has the official ClickHouse plugin installed and configured', () => {
    expect(services.grafana?.environment?.GF_INSTALL_PLUGINS).toMatch(
      /^grafana-clickhouse-datasource \d+\.\d+\.\d+$/,
    );
    const ch = datasources.find((d) => d.type === 'grafana-clickhouse-datasource');
    expect(ch?.jsonData).toMatchObject({
      host: 'clickhouse',
      port: 8123,
      protocol: 'http',
      defaultDatabase: 'analytics',
    });
    expect(read('deploy/compose/clickhouse-users.xml')).toContain(`<${String(ch?.jsonData.username)}>`);
  });

  it('has an ops and a product dashboard whose panels use provisioned datasources', () => {
    expect(dashboards.map((d) => d.file).sort()).toEqual(['ops.json', 'product.json']);
    const uids = datasources.map((d) => d.uid);
    for (const { file, json } of dashboards) {
      const ids = json.panels.map((p) => p.id);
      expect(new Set(ids).size, file).toBe(ids.length);
      for (const p of json.panels) expect(uids, `${file} panel ${p.id}`).toContain(p.datasource.uid);
    }
  });

  it('charts only metrics the services define', () => {
    const ops = dashboards.find((d) => d.file === 'ops.json')?.json;
    const names = new Set(
      (ops?.panels ?? []).flatMap((p) =>
        p.targets.flatMap((t) =>
          [...(t.expr ?? '').matchAll(/\b((?:collector|consumer|query)_[a-z_]+)/g)].map((m) => m[1] ?? ''),
        ),
      ),
    );
    expect(names.size).toBeGreaterThan(10);
    for (const n of names) {
      const base = n.replace(/_(bucket|sum|count)$/, '');
      expect(defined(base, ['services']), base).toBe(true);
    }
  });

  it('reads only tables and views the migrations create', () => {
    const migrations = readdirSync(join(ROOT, 'clickhouse/migrations'))
      .map((f) => read(join('clickhouse/migrations', f)))
      .join('\n');
    const product = dashboards.find((d) => d.file === 'product.json')?.json;
    const tables = new Set(
      (product?.panels ?? []).flatMap((p) =>
        p.targets.flatMap((t) => [...(t.rawSql ?? '').matchAll(/\bFROM\s+(\w+)/g)].map((m) => m[1] ?? '')),
      ),
    );
    expect(tables.size).toBeGreaterThan(1);
    for (const t of tables)
      expect(migrations, t).toMatch(new RegExp(`CREATE (TABLE|VIEW) IF NOT EXISTS ${t}\\b`));
  });
});
