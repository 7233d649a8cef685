/**
 * No Docker engine runs here, so the image is checked from its sources: the Dockerfile's shape
 * (stages, Node version, non-root user, HEALTHCHECK on a route every service serves), hadolint's
 * verdict, and that what each entry point loads at run time is in the runtime stage: every file
 * it imports copied and kept by .dockerignore, every package a production dependency.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { COLLECTOR_CONFIG } from '../../services/collector/config.ts';
import { consumerSpec } from '../../services/consumer/config.ts';
import { CONSUMER_ERRORS } from '../../services/lib/error-codes.ts';
import { createLogger } from '../../services/lib/logger.ts';
import { createRegistry } from '../../services/lib/metrics.ts';
import { buildOpsHttp } from '../../services/lib/ops-http.ts';
import { QUERY_CONFIG } from '../../services/query/config.ts';
import { refresherSpec } from '../../services/refresher/config.ts';
import { SERVICE_PROCESS_ENV } from '../process-env.ts';
import { HEALTH_PATH, healthUrls, SERVICE_PORTS } from './healthcheck.ts';
import { ENTRY_POINTS, fileUrls, getRoutes, keptInContext, ROOT, runtimeGraph } from './runtime-graph.ts';

const read = (p: string): string => readFileSync(join(ROOT, p), 'utf8');
const pkg = JSON.parse(read('package.json')) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

interface Instruction {
  readonly op: string;
  readonly args: string;
}

/** Instructions per stage, continuation lines joined, comments dropped. */
function stages(dockerfile: string): { name: string; from: string; steps: Instruction[] }[] {
  const lines = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const out: { name: string; from: string; steps: Instruction[] }[] = [];
  for (const line of lines) {
    const [op = '', ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    if (op.toUpperCase() === 'FROM') {
      const [, from = '', name = ''] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args) ?? [];
      out.push({ name, from, steps: [] });
    } else out.at(-1)?.steps.push({ op: op.toUpperCase(), args });
  }
  return out;
}

const dockerfile = read('Dockerfile');
const built = stages(dockerfile);
const runtime = built.at(-1);
const dockerignore = read('.dockerignore');

/** The runtime stage's COPY instructions: from the build context, or from an earlier stage. */
const copies = (runtime?.steps ?? [])
  .filter((s) => s.op === 'COPY')
  .map((s) => ({
    fromStage: s.args.includes('--from='),
    paths: s.args.split(/\s+/).filter((a) => !a.startsWith('--')),
  }));
/** Repository paths the runtime stage copies from the build context. */
const contextCopies = copies.filter((c) => !c.fromStage).flatMap((c) => c.paths.slice(0, -1));
/** Paths under /app that the runtime stage takes from an earlier stage (the dashboard bundle). */
const stageCopies = copies.filter((c) => c.fromStage).map((c) => (c.paths.at(-1) ?? '').replace(/^\.\//, ''));

const under = (file: string, dirs: readonly string[]): boolean =>
  dirs.some((d) => file === d || file.startsWith(`${d}/`));

/** Whether the runtime image holds this repository path. */
const inImage = (file: string): boolean =>
  (keptInContext(file, dockerignore) && under(file, contextCopies)) || under(file, stageCopies);

describe('Dockerfile', () => {
  it('builds in stages: production dependencies, the dashboard bundle, then the runtime', () => {
    expect(built.map((s) => s.name)).toEqual(['prod-deps', 'build', 'runtime']);
    const nodeImage = /^ARG NODE_IMAGE=(\S+)$/m.exec(dockerfile)?.[1];
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a Dockerfile ARG reference, not a template
    for (const s of built) expect(s.from, s.name).toBe('${NODE_IMAGE}');
    // The image runs the Node the tests run on: the `node` devDependency, a slim image, exact tag.
    expect(nodeImage).toBe(`node:${pkg.devDependencies.node}-bookworm-slim`);
    expect(built[0]?.steps.find((s) => s.op === 'RUN')?.args).toMatch(/npm ci --omit=dev --ignore-scripts/);
    expect(built[1]?.steps.map((s) => s.args).join('\n')).toMatch(/npm run build:dashboard/);
    expect(runtime?.steps).toContainEqual({
      op: 'COPY',
      args: '--from=build /app/services/query/dashboard/dist ./services/query/dashboard/dist',
    });
  });

  it('runs as a non-root numeric user, with a HEALTHCHECK on the /healthz every service serves', () => {
    const user = runtime?.steps.filter((s) => s.op === 'USER').at(-1)?.args ?? '';
    expect(user).toMatch(/^[1-9]\d*:[1-9]\d*$/);
    const health = runtime?.steps.find((s) => s.op === 'HEALTHCHECK')?.args ?? '';
    expect(health).toContain('CMD ["node", "deploy/docker/healthcheck.ts"]');
    for (const s of SERVICE_PORTS) {
      const routes = getRoutes(runtimeGraph(`services/${s.service}/main.ts`).files);
      expect([...routes], s.service).toContain(HEALTH_PATH);
    }
    const cmd = runtime?.steps.find((s) => s.op === 'CMD')?.args ?? '';
    expect(JSON.parse(cmd)).toEqual(['node', 'services/collector/main.ts']);
  });

  it('starts every service with the process settings deploy/local and the bench use', () => {
    const env = (runtime?.steps ?? []).filter((s) => s.op === 'ENV').flatMap((s) => s.args.split(/\s+/));
    for (const [name, value] of Object.entries(SERVICE_PROCESS_ENV))
      expect(env).toContain(`${name}=${value}`);
  });

  it("asks each service's health port by the variable and default the service itself reads", () => {
    const specs = {
      collector: COLLECTOR_CONFIG,
      query: QUERY_CONFIG,
      consumer: consumerSpec,
      refresher: refresherSpec,
    };
    for (const s of SERVICE_PORTS) {
      const field = (specs[s.service] as Record<string, { fallback?: unknown }>)[s.variable];
      expect(field?.fallback, `${s.service} ${s.variable}`).toBe(s.fallback);
    }
    expect(healthUrls({})).toEqual([
      'http://127.0.0.1:8080/healthz',
      'http://127.0.0.1:8081/healthz',
      'http://127.0.0.1:9464/healthz',
      'http://127.0.0.1:9465/healthz',
    ]);
    expect(healthUrls({ PORT: '9000', CONSUMER_HTTP_PORT: '9001' })).toEqual([
      'http://127.0.0.1:9000/healthz',
      'http://127.0.0.1:9001/healthz',
      'http://127.0.0.1:9465/healthz',
    ]);
  });

  it('has a healthcheck script that passes while the service answers /healthz and fails once it stops', async () => {
    const freePort = async (): Promise<number> => {
      const server = createServer().listen(0, '127.0.0.1');
      await new Promise((r) => server.once('listening', r));
      const { port } = server.address() as { port: number };
      await new Promise((r) => server.close(r));
      return port;
    };
    const ops = await buildOpsHttp({
      service: 'consumer',
      logger: createLogger('healthcheck-test', 'silent'),
      registry: createRegistry('healthcheck_test'),
      errors: CONSUMER_ERRORS,
      health: () => ({ ok: true, detail: {} }),
      readiness: () => ({ ok: false, detail: {} }),
      isShuttingDown: () => false,
    });
    await ops.listen({ port: 0, host: '127.0.0.1' });
    const { port } = ops.server.address() as { port: number };
    // Every other service port points at a closed one, so only the running ops port can answer.
    const env = {
      ...process.env,
      PORT: String(await freePort()),
      REFRESHER_HTTP_PORT: String(await freePort()),
      CONSUMER_HTTP_PORT: String(port),
    };
    const check = () =>
      promisify(execFile)(process.execPath, [join(ROOT, 'deploy/docker/healthcheck.ts')], { env }).then(
        () => 0,
        (err: { code?: number }) => err.code ?? -1,
      );
    try {
      expect(await check()).toBe(0);
    } finally {
      await ops.close();
    }
    expect(await check()).toBe(1);
  });

  it('keeps the build context small: node_modules, .data, .git, tests and .env stay out', () => {
    for (const path of ['node_modules/fastify/package.json', '.data/x', '.git/HEAD', '.env', 'bench/run.ts'])
      expect(keptInContext(path, dockerignore), path).toBe(false);
    expect(keptInContext('services/lib/config.test.ts', dockerignore)).toBe(false);
    expect(keptInContext('services/query/dashboard/dist/app.js', dockerignore)).toBe(false);
    expect(keptInContext('services/lib/config.ts', dockerignore)).toBe(true);
    expect(keptInContext('package-lock.json', dockerignore)).toBe(true);
  });

  it('installs production dependencies without install scripts (the image runs none)', () => {
    const lock = JSON.parse(read('package-lock.json')) as {
      packages: Record<string, { dev?: boolean; hasInstallScript?: boolean }>;
    };
    const scripted = Object.entries(lock.packages)
      .filter(([, p]) => p.hasInstallScript && !p.dev)
      .map(([name]) => name);
    expect(scripted).toEqual([]);
  });
});

describe('what each entry point loads at run time is in the image', () => {
  it.each(ENTRY_POINTS)('%s', (entry) => {
    const graph = runtimeGraph(entry);
    expect(graph.files.filter((f) => !inImage(f))).toEqual([]);
    // Data read next to the code (Avro schemas, migrations) must be in the image too.
    const urls = graph.files.flatMap(fileUrls);
    expect(urls.filter((u) => !inImage(u))).toEqual([]);
    const notProduction = [...graph.packages]
      .filter(([name]) => !(name in pkg.dependencies))
      .map(([name, by]) => `${name} (imported by ${by})`);
    expect(notProduction).toEqual([]);
  });
});

describe('hadolint', () => {
  const hadolint = execFileSync('bash', [join(ROOT, 'deploy/tools/install.sh'), 'hadolint'], {
    encoding: 'utf8',
  }).trim();
  const lint = (file: string): { code: string; line: number }[] => {
    const r = spawnSync(hadolint, ['--no-color', '-f', 'json', file], { encoding: 'utf8' });
    return JSON.parse(r.stdout || '[]') as { code: string; line: number }[];
  };

  it('finds nothing in the Dockerfile', () => {
    expect(lint(join(ROOT, 'Dockerfile'))).toEqual([]);
  });

  it('does flag a Dockerfile that runs as root from an unpinned image (the linter is live)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hadolint-'));
    writeFileSync(join(dir, 'Dockerfile'), 'FROM node:latest\nRUN cd /app && npm install\nUSER root\n');
    expect(lint(join(dir, 'Dockerfile')).map((f) => f.code)).toEqual(
      expect.arrayContaining(['DL3007', 'DL3003', 'DL3002']),
    );
  });
});
