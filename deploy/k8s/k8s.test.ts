/**
 * The Kubernetes manifests, checked without a cluster: every resource against the Kubernetes JSON
 * schemas (kubernetes-validate, strict, installed from PyPI by deploy/tools/install.sh), and
 * against the code: each container runs an entry point the image holds, sets only variables that
 * service's config reads and passes its validation, probes routes it serves on the port it
 * listens on, runs non-root and read-only; PDBs and HPAs select real workloads; no Secret is
 * committed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { readCollectorConfig } from '../../services/collector/config.ts';
import { consumerSpec } from '../../services/consumer/config.ts';
import { readConfig } from '../../services/lib/config.ts';
import { readQueryConfig } from '../../services/query/config.ts';
import { readRefresherConfig } from '../../services/refresher/config.ts';
import { configVariables, ENTRY_POINTS, getRoutes, ROOT, runtimeGraph } from '../docker/runtime-graph.ts';

const DIR = join(ROOT, 'deploy/k8s');
/** The Kubernetes versions the manifests must be valid for: the oldest supported and the newest. */
const KUBERNETES_VERSIONS = ['1.30.0', '1.37.0'];
const SECRET = 'activity-pipeline-secrets';

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string }; configMapKeyRef?: { name: string } };
}
interface Probe {
  httpGet: { path: string; port: string | number };
}
interface Container {
  name: string;
  image: string;
  command: string[];
  env?: EnvVar[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  ports?: { name: string; containerPort: number }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { drop?: string[] };
  };
}
interface PodSpec {
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
  containers: Container[];
}
interface Resource {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  data?: Record<string, string>;
  spec?: {
    replicas?: number;
    selector?: { matchLabels: Record<string, string> };
    template?: { metadata: { labels: Record<string, string> }; spec: PodSpec };
    scaleTargetRef?: { kind: string; name: string };
    maxReplicas?: number;
    metrics?: { type: string; external?: { metric: { name: string } } }[];
  };
}

const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
const resources: (Resource & { file: string })[] = files.flatMap((file) =>
  parseAllDocuments(readFileSync(join(DIR, file), 'utf8')).map((d) => ({
    ...(d.toJS() as Resource),
    file,
  })),
);
const ofKind = (kind: string) => resources.filter((r) => r.kind === kind);
const workloads = [...ofKind('Deployment'), ...ofKind('Job')];
const configMap = (name: string): Record<string, string> =>
  ofKind('ConfigMap').find((c) => c.metadata.name === name)?.data ?? {};

/** A container's environment as the pod gets it; Secret values become placeholders. */
function environment(c: Container): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of c.envFrom ?? []) Object.assign(env, configMap(from.configMapRef?.name ?? ''));
  for (const e of c.env ?? []) env[e.name] = e.value ?? `from-secret-${e.valueFrom?.secretKeyRef?.key}`;
  return env;
}

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

describe('deploy/k8s', () => {
  it('lists every manifest in kustomization.yaml, all in one namespace', () => {
    const k = parseAllDocuments(readFileSync(join(DIR, 'kustomization.yaml'), 'utf8'))[0]?.toJS() as {
      namespace: string;
      resources: string[];
    };
    expect([...k.resources].sort()).toEqual([...files].sort());
    for (const r of resources) {
      if (r.kind !== 'Namespace')
        expect(r.metadata.namespace, `${r.file} ${r.metadata.name}`).toBe(k.namespace);
    }
  });

  const validator = execFileSync('bash', [join(ROOT, 'deploy/tools/install.sh'), 'kubernetes-validate'], {
    encoding: 'utf8',
  }).trim();
  const validate = (paths: string[], version: string) =>
    spawnSync(validator, ['--strict', '--quiet', '-k', version, ...paths], { encoding: 'utf8' });

  it.each(KUBERNETES_VERSIONS)('passes the Kubernetes %s schemas, strictly (no unknown field)', (version) => {
    const r = validate(
      files.map((f) => join(DIR, f)),
      version,
    );
    expect(`${r.stdout}${r.stderr}`).toBe('');
    expect(r.status).toBe(0);
  });

  it('has a validator that rejects a misspelt field (the check is live)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'k8s-'));
    const broken = readFileSync(join(DIR, 'refresher.yaml'), 'utf8').replace('replicas: 2', 'replica: 2');
    writeFileSync(join(dir, 'refresher.yaml'), broken);
    expect(validate([join(dir, 'refresher.yaml')], '1.37.0').status).not.toBe(0);
  });

  it('commits no Secret, and takes every secret from the one the README says to create', () => {
    expect(ofKind('Secret')).toEqual([]);
    const readme = readFileSync(join(DIR, 'README.md'), 'utf8');
    const keys = workloads.flatMap((w) =>
      (w.spec?.template?.spec.containers ?? []).flatMap((c) =>
        (c.env ?? []).flatMap((e) => (e.valueFrom?.secretKeyRef ? [e.valueFrom.secretKeyRef] : [])),
      ),
    );
    expect(keys.length).toBeGreaterThan(3);
    for (const k of keys) {
      expect(k.name).toBe(SECRET);
      expect(readme, k.key).toContain(`--from-literal=${k.key}=`);
    }
    // No secret as a plain value or in a ConfigMap.
    const SECRETISH = /PASSWORD|TOKENS|^WRITE_KEYS$/;
    for (const c of workloads.flatMap((w) => w.spec?.template?.spec.containers ?? [])) {
      for (const e of c.env ?? []) if (e.value !== undefined) expect(e.name, c.name).not.toMatch(SECRETISH);
    }
    for (const m of ofKind('ConfigMap')) {
      for (const k of Object.keys(m.data ?? {})) expect(k, m.metadata.name).not.toMatch(SECRETISH);
    }
  });
});

describe.each(workloads.map((w) => [w.metadata.name, w] as const))('%s', (name, w) => {
  const pod = w.spec?.template?.spec as PodSpec;
  const [container] = pod.containers;
  if (container === undefined) throw new Error(`${name} has no container`);
  const entry = container.command[1] ?? '';
  const env = environment(container);

  it('runs an entry point of the pipeline image, with only variables its config reads', () => {
    expect(pod.containers).toHaveLength(1);
    expect(container.image).toBe(`activity-pipeline:${pkg.version}`);
    expect(container.command[0]).toBe('node');
    expect(ENTRY_POINTS).toContain(entry);
    const reads = configVariables(runtimeGraph(entry).files);
    for (const v of Object.keys(env)) expect(reads.has(v), v).toBe(true);
  });

  it("gives it a configuration the service's own validation accepts", () => {
    const check: Record<string, () => unknown> = {
      collector: () => readCollectorConfig(env),
      consumer: () => readConfig(consumerSpec, env),
      query: () => readQueryConfig(env),
      refresher: () => readRefresherConfig(env),
      migrate: () => undefined,
    };
    expect(check[name], `no check for ${name}`).toBeDefined();
    expect(check[name]).not.toThrow();
  });

  it('runs non-root, without privilege, on a read-only root filesystem, with memory bounded', () => {
    expect(pod.securityContext?.runAsNonRoot).toBe(true);
    expect(pod.securityContext?.runAsUser).toBeGreaterThan(0);
    expect(container.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(container.resources?.requests?.cpu).toBeDefined();
    expect(container.resources?.requests?.memory).toBeDefined();
    expect(container.resources?.limits?.memory).toBeDefined();
  });

  if (w.kind === 'Deployment') {
    it('probes /healthz and /readyz, routes the service serves, on the port it listens on', () => {
      const routes = getRoutes(runtimeGraph(entry).files);
      expect(container.livenessProbe?.httpGet.path).toBe('/healthz');
      expect(container.readinessProbe?.httpGet.path).toBe('/readyz');
      for (const probe of [container.livenessProbe, container.readinessProbe]) {
        expect([...routes]).toContain(probe?.httpGet.path);
        const port = container.ports?.find((p) => p.name === probe?.httpGet.port)?.containerPort;
        const listens = env.PORT ?? env.CONSUMER_HTTP_PORT ?? env.REFRESHER_HTTP_PORT;
        expect(String(port)).toBe(listens);
      }
      // Reachable from the kubelet: not the loopback default.
      expect(env.HOST ?? env.CONSUMER_HTTP_HOST ?? env.REFRESHER_HTTP_HOST).toBe('0.0.0.0');
    });
  }
});

describe('disruption budgets and autoscaling', () => {
  const labelsOf = (name: string) =>
    ofKind('Deployment').find((d) => d.metadata.name === name)?.spec?.template?.metadata.labels ?? {};

  it('gives every Deployment with more than one replica a PodDisruptionBudget that selects it', () => {
    const replicated = ofKind('Deployment').filter((d) => (d.spec?.replicas ?? 1) > 1);
    expect(replicated.map((d) => d.metadata.name).sort()).toEqual([
      'collector',
      'consumer',
      'query',
      'refresher',
    ]);
    for (const d of replicated) {
      const pdb = ofKind('PodDisruptionBudget').find((p) => p.metadata.name === d.metadata.name);
      expect(labelsOf(d.metadata.name)).toMatchObject(pdb?.spec?.selector?.matchLabels ?? { missing: 'pdb' });
    }
  });

  it('scales the collector on CPU and the consumer on lag, never past the partitions', () => {
    const hpa = (name: string) =>
      ofKind('HorizontalPodAutoscaler').find((h) => h.metadata.name === name)?.spec;
    expect(hpa('collector')?.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: 'collector' });
    expect(hpa('collector')?.metrics?.[0]?.type).toBe('Resource');
    const consumer = hpa('consumer');
    expect(consumer?.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: 'consumer' });
    const metric = consumer?.metrics?.[0]?.external?.metric.name ?? '';
    // A metric the consumer exports, and the one the README's prometheus-adapter rule serves.
    expect(readFileSync(join(ROOT, 'services/consumer/metrics.ts'), 'utf8')).toContain(`name: '${metric}'`);
    expect(readFileSync(join(DIR, 'README.md'), 'utf8')).toContain(`as: ${metric}`);
    expect(consumer?.maxReplicas).toBe(Number(configMap('consumer-config').KAFKA_TOPIC_PARTITIONS));
    expect(configMap('collector-config').KAFKA_TOPIC_PARTITIONS).toBe(
      configMap('consumer-config').KAFKA_TOPIC_PARTITIONS,
    );
  });
});
