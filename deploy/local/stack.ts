/**
 * Local Kafka + ClickHouse without Docker. Each service is a project-owned process with its config,
 * data and log under `.data/` (git-ignored); every operation is idempotent: `up` on a running service
 * only waits for readiness, `down` on a stopped one does nothing.
 *
 * - Kafka: Apache Kafka's own jars from Maven Central (deploy/local/kafka/pom.xml) in KRaft mode, run
 *   with the machine's Java: one node (broker + controller) by default; KAFKA_NODES=3 starts a
 *   cluster of three such nodes (three controller voters, replication factor 3,
 *   min.insync.replicas 2) on consecutive port pairs from KAFKA_PORT / KAFKA_CONTROLLER_PORT.
 * - ClickHouse: `clickhouse` on PATH (the official single binary), else `clickhouse-server`, else
 *   Debian's package installed with apt-get.
 *
 * When KAFKA_BROKERS or CLICKHOUSE_URL is set, that service is external: nothing is started.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

const ROOT = new URL('../../', import.meta.url).pathname;
const HERE = new URL('./', import.meta.url).pathname;
const execFileAsync = promisify(execFile);

/** One Kafka process: broker and controller in one JVM, its own ports and folder. */
export interface KafkaNode {
  readonly id: number;
  readonly port: number;
  readonly controllerPort: number;
}

export interface StackOptions {
  readonly dataDir: string;
  /** The first node's ports (the only node's, on a single broker). */
  readonly kafkaPort: number;
  readonly kafkaControllerPort: number;
  /** One node: the single-broker layout; more: a cluster, each node a broker and a voter. */
  readonly kafkaNodes: readonly KafkaNode[];
  readonly clickhouseHttpPort: number;
  readonly clickhouseTcpPort: number;
  /** Set when Kafka is external (KAFKA_BROKERS). */
  readonly externalKafka: string | undefined;
  /** Set when ClickHouse is external (CLICKHOUSE_URL). */
  readonly externalClickhouse: string | undefined;
  readonly log: (line: string) => void;
}

export function stackOptions(
  env: Readonly<Record<string, string | undefined>>,
  log: (line: string) => void,
): StackOptions {
  const port = (name: string, fallback: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n <= 0 || n > 65535) throw new Error(`${name}: not a port number: ${raw}`);
    return n;
  };
  const kafkaPort = port('KAFKA_PORT', 9092);
  const kafkaControllerPort = port('KAFKA_CONTROLLER_PORT', 9093);
  const rawNodes = env.KAFKA_NODES || '1';
  const count = Number(rawNodes);
  if (!Number.isInteger(count) || count < 1 || count > 9)
    throw new Error(`KAFKA_NODES: not a node count from 1 to 9: ${rawNodes}`);
  return {
    dataDir: env.LOCAL_DATA_DIR || join(ROOT, '.data'),
    kafkaPort,
    kafkaControllerPort,
    kafkaNodes: kafkaNodesFrom(count, kafkaPort, kafkaControllerPort),
    clickhouseHttpPort: port('CLICKHOUSE_HTTP_PORT', 8123),
    clickhouseTcpPort: port('CLICKHOUSE_TCP_PORT', 9000),
    externalKafka: env.KAFKA_BROKERS || undefined,
    externalClickhouse: env.CLICKHOUSE_URL || undefined,
    log,
  };
}

/**
 * Node n (from 0) listens on the pair (port + 2n, controllerPort + 2n): the defaults 9092/9093 give
 * 9092-9097 for three nodes. Every port must differ (a controller port one above the broker port
 * does); a collision is refused here rather than at bind time.
 */
export function kafkaNodesFrom(count: number, port: number, controllerPort: number): KafkaNode[] {
  const nodes = Array.from({ length: count }, (_, n) => ({
    id: n + 1,
    port: port + 2 * n,
    controllerPort: controllerPort + 2 * n,
  }));
  const ports = nodes.flatMap((n) => [n.port, n.controllerPort]);
  if (new Set(ports).size !== ports.length || ports.some((p) => p > 65_535))
    throw new Error(
      `kafka: ${count} nodes need distinct ports from KAFKA_PORT=${port} and KAFKA_CONTROLLER_PORT=${controllerPort} (node n uses each plus 2n); got ${ports.join(',')}`,
    );
  return nodes;
}

export interface Endpoints {
  readonly kafkaBrokers: string;
  readonly clickhouseUrl: string;
  /**
   * The replication factor services should create topics with (their KAFKA_REPLICATION_FACTOR);
   * unset when Kafka is external, where the services' own setting applies.
   */
  readonly kafkaReplicationFactor?: number;
}

export function endpoints(o: StackOptions): Endpoints {
  return {
    kafkaBrokers: o.externalKafka ?? o.kafkaNodes.map((n) => `127.0.0.1:${n.port}`).join(','),
    clickhouseUrl: o.externalClickhouse ?? `http://127.0.0.1:${o.clickhouseHttpPort}`,
    ...(o.externalKafka ? {} : { kafkaReplicationFactor: replicationFactor(o.kafkaNodes.length) }),
  };
}

/** Three copies where there are three brokers or more; fewer brokers cannot hold more. */
export function replicationFactor(nodes: number): number {
  return Math.min(3, nodes);
}

// ---------------------------------------------------------------------------------------------
// process helpers

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function readPid(file: string): number | undefined {
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 && pidAlive(pid) ? pid : undefined;
}

export function portOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  logFile: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(250);
  }
  const tail = existsSync(logFile)
    ? readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n')
    : '(no log)';
  throw new Error(`${what} not ready after ${timeoutMs} ms; last lines of ${logFile}:\n${tail}`);
}

export function spawnDetached(
  cmd: string,
  args: string[],
  logFile: string,
  pidFile: string,
  cwd: string,
  env: NodeJS.ProcessEnv = process.env,
): number {
  const out = openSync(logFile, 'a');
  const child = spawn(cmd, args, { cwd, env, detached: true, stdio: ['ignore', out, out] });
  if (child.pid === undefined) throw new Error(`could not start ${cmd}`);
  child.unref();
  writeFileSync(pidFile, `${child.pid}\n`);
  return child.pid;
}

export async function stopPid(
  name: string,
  pidFile: string,
  log: (l: string) => void,
  timeoutMs = 30_000,
): Promise<void> {
  const pid = readPid(pidFile);
  if (pid === undefined) {
    rmSync(pidFile, { force: true });
    return;
  }
  log(`${name}: stopping pid ${pid}`);
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (pidAlive(pid) && Date.now() < deadline) await sleep(200);
  if (pidAlive(pid)) {
    log(`${name}: did not stop within ${timeoutMs} ms, killing`);
    process.kill(pid, 'SIGKILL');
    while (pidAlive(pid)) await sleep(100);
  }
  rmSync(pidFile, { force: true });
}

function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  const p = r.stdout.trim();
  return r.status === 0 && p !== '' ? p : undefined;
}

// ---------------------------------------------------------------------------------------------
// Kafka

/**
 * Where a node keeps its config, data, log and pid: `kafka/` for the single node, `kafka-cluster/
 * node-<id>/` for a cluster's, so switching between the two never starts a node on storage
 * formatted for the other quorum.
 */
function kafkaNodeDir(o: StackOptions, node: KafkaNode): string {
  return o.kafkaNodes.length === 1
    ? join(o.dataDir, 'kafka')
    : join(o.dataDir, 'kafka-cluster', `node-${node.id}`);
}

/** The pid of a running node (undefined when it is not running). */
export function kafkaNodePid(o: StackOptions, id: number): number | undefined {
  const node = o.kafkaNodes.find((n) => n.id === id);
  if (node === undefined) throw new Error(`kafka: no node ${id} (${o.kafkaNodes.length} configured)`);
  return readPid(join(kafkaNodeDir(o, node), 'kafka.pid'));
}

/** Every Kafka pid file under the data folder, whatever node count started them, with a name. */
function kafkaPidFiles(o: StackOptions): { name: string; file: string }[] {
  const files = [{ name: 'kafka', file: join(o.dataDir, 'kafka', 'kafka.pid') }];
  const cluster = join(o.dataDir, 'kafka-cluster');
  if (existsSync(cluster))
    for (const d of readdirSync(cluster))
      files.push({ name: `kafka ${d}`, file: join(cluster, d, 'kafka.pid') });
  return files;
}

/**
 * The jars of deploy/local/<component>/pom.xml (Kafka's, ZooKeeper's), shared by every stack of this
 * checkout (private test stacks too): fetched once into .data/<component>-libs, again when the pom
 * changes.
 */
export function mavenJars(component: 'kafka' | 'zookeeper', log: (line: string) => void): string {
  const libs = join(ROOT, '.data', `${component}-libs`);
  const pom = join(HERE, component, 'pom.xml');
  const stamp = join(libs, '.pom');
  const pomText = readFileSync(pom, 'utf8');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === pomText) return libs;
  log(`${component}: fetching jars from Maven Central (once)`);
  rmSync(libs, { recursive: true, force: true });
  mkdirSync(libs, { recursive: true });
  const r = spawnSync(
    'mvn',
    [
      '-q',
      '-B',
      '-f',
      pom,
      'dependency:copy-dependencies',
      `-DoutputDirectory=${libs}`,
      '-DincludeScope=runtime',
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  if (r.status !== 0)
    throw new Error(`${component}: mvn failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  writeFileSync(stamp, pomText);
  return libs;
}

function kafkaProperties(o: StackOptions, node: KafkaNode, logDir: string): string {
  const rf = replicationFactor(o.kafkaNodes.length);
  // acks=all then means "on min.insync.replicas copies": two of three, so one broker may fail (or be
  // restarted for an upgrade) without producers stopping, and an acknowledged record survives it.
  const minIsr = Math.max(1, rf - 1);
  const quorum =
    o.kafkaNodes.length === 1
      ? `controller.quorum.bootstrap.servers=127.0.0.1:${node.controllerPort}`
      : // A static quorum: every node is a voter, so a majority (two of three) elects the controller.
        `controller.quorum.voters=${o.kafkaNodes.map((n) => `${n.id}@127.0.0.1:${n.controllerPort}`).join(',')}`;
  return [
    '# generated by deploy/local/stack.ts; edits are overwritten',
    'process.roles=broker,controller',
    `node.id=${node.id}`,
    quorum,
    `listeners=PLAINTEXT://127.0.0.1:${node.port},CONTROLLER://127.0.0.1:${node.controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${node.port},CONTROLLER://127.0.0.1:${node.controllerPort}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    `log.dirs=${logDir}`,
    'num.partitions=3',
    'auto.create.topics.enable=false',
    `default.replication.factor=${rf}`,
    `min.insync.replicas=${minIsr}`,
    `offsets.topic.replication.factor=${rf}`,
    'offsets.topic.num.partitions=10',
    `transaction.state.log.replication.factor=${rf}`,
    `transaction.state.log.min.isr=${minIsr}`,
    `share.coordinator.state.topic.replication.factor=${rf}`,
    `share.coordinator.state.topic.min.isr=${minIsr}`,
    // A local stack has no reason to wait for more members before the first rebalance.
    'group.initial.rebalance.delay.ms=0',
    'group.consumer.min.session.timeout.ms=1000',
    'group.min.session.timeout.ms=1000',
    '',
  ].join('\n');
}

export function java(): string {
  const home = process.env.JAVA_HOME;
  return home ? join(home, 'bin', 'java') : 'java';
}

/** The cluster id a node was formatted with (`cluster.id=` of its meta.properties), if any. */
function formattedClusterId(logDir: string): string | undefined {
  const meta = join(logDir, 'meta.properties');
  if (!existsSync(meta)) return undefined;
  return /^cluster\.id=(.+)$/m.exec(readFileSync(meta, 'utf8'))?.[1]?.trim();
}

/** Starts the nodes that are not running and waits until every node is ready. */
export async function kafkaUp(o: StackOptions): Promise<void> {
  if (o.externalKafka) {
    o.log(`kafka: external (${o.externalKafka}), not started`);
    return;
  }
  const nodes = o.kafkaNodes.map((node) => {
    const dir = kafkaNodeDir(o, node);
    return {
      node,
      dir,
      pidFile: join(dir, 'kafka.pid'),
      logFile: join(dir, 'kafka.log'),
      logDir: join(dir, 'data'),
    };
  });
  const name = (n: KafkaNode): string => (o.kafkaNodes.length === 1 ? 'kafka' : `kafka node ${n.id}`);
  // Every node of a cluster must be formatted with one cluster id: a node whose storage was wiped
  // joins again under the id the others already have.
  const clusterId =
    nodes.map((n) => formattedClusterId(n.logDir)).find((id) => id !== undefined) ??
    randomUUID().replace(/-/g, '').slice(0, 22);
  // Formatting is a JVM start of its own per node: the nodes are prepared and started in parallel.
  const toStart = nodes.filter((n) => readPid(n.pidFile) === undefined);
  const libs = toStart.length > 0 ? mavenJars('kafka', o.log) : '';
  const cp = `${libs}/*`;
  await Promise.all(
    toStart.map(async ({ node, dir, pidFile, logFile, logDir }) => {
      mkdirSync(dir, { recursive: true });
      if (await portOpen(node.port))
        throw new Error(`${name(node)}: port ${node.port} is taken by another process`);
      const props = join(dir, 'server.properties');
      writeFileSync(props, kafkaProperties(o, node, logDir));
      if (!existsSync(join(logDir, 'meta.properties'))) {
        o.log(
          `${name(node)}: formatting storage (KRaft, ${o.kafkaNodes.length === 1 ? 'standalone controller' : `${o.kafkaNodes.length} voters`})`,
        );
        await execFileAsync(java(), [
          '-cp',
          cp,
          'kafka.tools.StorageTool',
          'format',
          // A static quorum (controller.quorum.voters) is formatted without initial controllers.
          ...(o.kafkaNodes.length === 1 ? ['--standalone'] : []),
          '-t',
          clusterId,
          '-c',
          props,
        ]);
      }
      o.log(`${name(node)}: starting on 127.0.0.1:${node.port} (log ${logFile})`);
      spawnDetached(
        java(),
        [
          '-Xms256m',
          '-Xmx1g',
          // Kafka's own start script's JVM flags (bin/kafka-run-class.sh): short G1 pauses, since
          // a collector's acknowledgement waits on every one.
          '-XX:+UseG1GC',
          '-XX:MaxGCPauseMillis=20',
          '-XX:InitiatingHeapOccupancyPercent=35',
          '-XX:+ExplicitGCInvokesConcurrent',
          '-Djava.awt.headless=true',
          `-Dlog4j2.configurationFile=${join(HERE, 'kafka', 'log4j2.yaml')}`,
          '-cp',
          cp,
          'kafka.Kafka',
          props,
        ],
        logFile,
        pidFile,
        dir,
      );
    }),
  );
  // A cluster node is ready only once a quorum elected a controller and unfenced it: the nodes are
  // started together above and waited for together here.
  await Promise.all(
    nodes.map(({ node, pidFile, logFile }) =>
      waitFor(
        name(node),
        async () => {
          if (readPid(pidFile) === undefined)
            throw new Error(`${name(node)}: process exited; see ${logFile}`);
          return (
            (await portOpen(node.port)) && readFileSync(logFile, 'utf8').includes('Kafka Server started')
          );
        },
        90_000,
        logFile,
      ),
    ),
  );
  o.log(`kafka: ready (${endpoints(o).kafkaBrokers})`);
}

/** Stops every Kafka node under the data folder (single node or cluster, whatever KAFKA_NODES says now). */
export async function kafkaDown(o: StackOptions): Promise<void> {
  if (o.externalKafka) return;
  await Promise.all(kafkaPidFiles(o).map((f) => stopPid(f.name, f.file, o.log)));
}

// ---------------------------------------------------------------------------------------------
// ClickHouse

function clickhouseDir(o: StackOptions): string {
  return join(o.dataDir, 'clickhouse');
}

/** The server command: official single binary, Debian's clickhouse-server, or install Debian's. */
function clickhouseCommand(log: (line: string) => void): { cmd: string; args: string[] } {
  const single = which('clickhouse');
  if (single) return { cmd: single, args: ['server'] };
  let server =
    which('clickhouse-server') ??
    (existsSync('/usr/sbin/clickhouse-server') ? '/usr/sbin/clickhouse-server' : undefined);
  if (!server) {
    log('clickhouse: no clickhouse binary on PATH; installing Debian clickhouse-server with apt-get (once)');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const upd = spawnSync('apt-get', ['update', '-qq'], { encoding: 'utf8', env });
    const inst = spawnSync(
      'apt-get',
      ['install', '-y', '-q', '--no-install-recommends', 'clickhouse-server', 'clickhouse-client'],
      {
        encoding: 'utf8',
        env,
      },
    );
    if (inst.status !== 0) {
      throw new Error(
        `clickhouse: apt-get install failed (exit ${inst.status}); run as root or put a clickhouse binary on PATH.\n${upd.stderr}\n${inst.stderr}`,
      );
    }
    server = '/usr/sbin/clickhouse-server';
  }
  return { cmd: server, args: [] };
}

/**
 * One ClickHouse server process: its folder (config, data, logs, pid) and ports. The stack runs
 * one; deploy/local/clickhouse-cluster.ts runs several, each with its cluster membership in
 * `extraConfig` and the cluster's settings in `profileSettings`.
 */
export interface ClickhouseNode {
  readonly name: string;
  readonly dir: string;
  readonly httpPort: number;
  readonly tcpPort: number;
  /** XML elements added to config.xml's root. */
  readonly extraConfig?: string;
  /** Settings added to every profile of users.xml. */
  readonly profileSettings?: Readonly<Record<string, string | number>>;
}

function stackNode(o: StackOptions): ClickhouseNode {
  return {
    name: 'clickhouse',
    dir: clickhouseDir(o),
    httpPort: o.clickhouseHttpPort,
    tcpPort: o.clickhouseTcpPort,
  };
}

function clickhouseConfig(n: ClickhouseNode): string {
  const dir = n.dir;
  const data = join(dir, 'data');
  return `<?xml version="1.0"?>
<!-- generated by deploy/local/stack.ts; edits are overwritten. Valid for 18.16 and current ClickHouse. -->
<yandex>
  <logger>
    <level>warning</level>
    <log>${dir}/server.log</log>
    <errorlog>${dir}/server.err.log</errorlog>
    <size>100M</size>
    <count>2</count>
  </logger>
  <http_port>${n.httpPort}</http_port>
  <tcp_port>${n.tcpPort}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <max_connections>1024</max_connections>
  <keep_alive_timeout>10</keep_alive_timeout>
  <max_concurrent_queries>100</max_concurrent_queries>
  <uncompressed_cache_size>1073741824</uncompressed_cache_size>
  <mark_cache_size>536870912</mark_cache_size>
  <path>${data}/</path>
  <tmp_path>${data}/tmp/</tmp_path>
  <user_files_path>${data}/user_files/</user_files_path>
  <format_schema_path>${data}/format_schemas/</format_schema_path>
  <users_config>${join(dir, 'users.xml')}</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mlock_executable>false</mlock_executable>
${n.extraConfig ?? ''}</yandex>
`;
}

/**
 * Users: `default` (read-write, migrations and the consumer) and `analytics_reader` (readonly=1, with
 * per-query limits, at most 8 queries at once, results capped at 100k rows and a per-minute and
 * per-hour quota), which the query API uses so a runaway dashboard query cannot write or starve
 * ingestion. Both are bound to loopback; the local stack is not a production deployment.
 */
function clickhouseUsers(settings: Readonly<Record<string, string | number>> = {}): string {
  const extra = Object.entries(settings)
    .map(([k, v]) => `\n      <${k}>${v}</${k}>`)
    .join('');
  return `<?xml version="1.0"?>
<yandex>
  <profiles>
    <default>
      <max_memory_usage>4000000000</max_memory_usage>
      <allow_experimental_low_cardinality_type>1</allow_experimental_low_cardinality_type>${extra}
    </default>
    <reader>
      <readonly>1</readonly>
      <max_memory_usage>1000000000</max_memory_usage>
      <max_execution_time>15</max_execution_time>
      <max_rows_to_read>500000000</max_rows_to_read>
      <max_result_rows>100000</max_result_rows>
      <result_overflow_mode>break</result_overflow_mode>
      <max_concurrent_queries_for_user>8</max_concurrent_queries_for_user>
      <allow_experimental_low_cardinality_type>1</allow_experimental_low_cardinality_type>${extra}
    </reader>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
    <analytics_reader>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>reader</profile>
      <quota>reader</quota>
    </analytics_reader>
  </users>
  <quotas>
    <!-- What all query API callers together may cost per minute and hour: at most one core's
         worth of query time, so dashboards cannot starve ingestion (code 201 -> the API's 429). -->
    <reader>
      <interval>
        <duration>60</duration>
        <queries>6000</queries>
        <errors>600</errors>
        <result_rows>0</result_rows>
        <read_rows>20000000000</read_rows>
        <execution_time>60</execution_time>
      </interval>
      <interval>
        <duration>3600</duration>
        <queries>200000</queries>
        <errors>10000</errors>
        <result_rows>0</result_rows>
        <read_rows>600000000000</read_rows>
        <execution_time>2400</execution_time>
      </interval>
    </reader>
    <default>
      <interval>
        <duration>3600</duration>
        <queries>0</queries>
        <errors>0</errors>
        <result_rows>0</result_rows>
        <read_rows>0</read_rows>
        <execution_time>0</execution_time>
      </interval>
    </default>
  </quotas>
</yandex>
`;
}

async function clickhousePing(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(2000) });
    return res.ok && (await res.text()).startsWith('Ok');
  } catch {
    return false;
  }
}

export async function clickhouseUp(o: StackOptions): Promise<void> {
  if (o.externalClickhouse) {
    o.log(`clickhouse: external (${o.externalClickhouse}), not started`);
    return;
  }
  await clickhouseNodeUp(stackNode(o), o.log);
}

export async function clickhouseNodeUp(n: ClickhouseNode, log: (line: string) => void): Promise<void> {
  const url = `http://127.0.0.1:${n.httpPort}`;
  const dir = n.dir;
  const pidFile = join(dir, 'clickhouse.pid');
  const logFile = join(dir, 'stdout.log');
  mkdirSync(join(dir, 'data'), { recursive: true });
  if (readPid(pidFile) === undefined) {
    if (await portOpen(n.httpPort))
      throw new Error(`${n.name}: port ${n.httpPort} is taken by another process`);
    const { cmd, args } = clickhouseCommand(log);
    const config = join(dir, 'config.xml');
    writeFileSync(config, clickhouseConfig(n));
    writeFileSync(join(dir, 'users.xml'), clickhouseUsers(n.profileSettings));
    log(`${n.name}: starting ${cmd} on 127.0.0.1:${n.httpPort} (log ${dir})`);
    // One machine runs everything here. The acknowledged path (collector -> Kafka) answers clients
    // and must not wait; ClickHouse's work (inserts, and merges that take every core for seconds as
    // parts grow) only delays rows, which shows as consumer lag. Nice 10 gives the acknowledged path
    // the cores first: the 30-minute soak shed intake during such stalls with ClickHouse at
    // normal priority (bench/SOAK.md, docs/RELIABILITY.md). A deployment that gives ClickHouse its
    // own machines does not need this.
    const nice = which('nice');
    const [c, a] = nice ? [nice, ['-n', '10', cmd, ...args]] : [cmd, args];
    spawnDetached(c, [...a, `--config-file=${config}`], logFile, pidFile, dir);
  }
  await waitFor(
    n.name,
    async () => {
      if (readPid(pidFile) === undefined)
        throw new Error(`${n.name}: process exited; see ${logFile} and ${dir}/server.err.log`);
      return clickhousePing(url);
    },
    60_000,
    logFile,
  );
  log(`${n.name}: ready`);
}

export async function clickhouseDown(o: StackOptions): Promise<void> {
  if (o.externalClickhouse) return;
  await clickhouseNodeDown(stackNode(o), o.log);
}

export async function clickhouseNodeDown(n: ClickhouseNode, log: (line: string) => void): Promise<void> {
  await stopPid(n.name, join(n.dir, 'clickhouse.pid'), log);
}

// ---------------------------------------------------------------------------------------------

export async function up(o: StackOptions): Promise<Endpoints> {
  // ClickHouse first: Kafka's JVM start is the slower of the two, and both are needed.
  await clickhouseUp(o);
  await kafkaUp(o);
  return endpoints(o);
}

export async function down(o: StackOptions): Promise<void> {
  await kafkaDown(o);
  await clickhouseDown(o);
}

export interface ServiceStatus {
  readonly name: string;
  readonly mode: 'local' | 'external';
  readonly pid: number | undefined;
  readonly ready: boolean;
  readonly endpoint: string;
}

export async function status(o: StackOptions): Promise<ServiceStatus[]> {
  const e = endpoints(o);
  const chPid = readPid(join(clickhouseDir(o), 'clickhouse.pid'));
  const kafka: ServiceStatus[] = o.externalKafka
    ? await Promise.all(
        e.kafkaBrokers.split(',').map(async (broker) => {
          const [host = '127.0.0.1', port = ''] = broker.split(':');
          return {
            name: 'kafka',
            mode: 'external' as const,
            pid: undefined,
            ready: await portOpen(Number(port), host),
            endpoint: broker,
          };
        }),
      )
    : await Promise.all(
        o.kafkaNodes.map(async (n) => ({
          name: o.kafkaNodes.length === 1 ? 'kafka' : `kafka-${n.id}`,
          mode: 'local' as const,
          pid: kafkaNodePid(o, n.id),
          ready: await portOpen(n.port),
          endpoint: `127.0.0.1:${n.port}`,
        })),
      );
  return [
    ...kafka,
    {
      name: 'clickhouse',
      mode: o.externalClickhouse ? 'external' : 'local',
      pid: chPid,
      ready: await clickhousePing(e.clickhouseUrl),
      endpoint: e.clickhouseUrl,
    },
  ];
}
