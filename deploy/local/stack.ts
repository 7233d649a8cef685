/**
 * Local Kafka + ClickHouse without Docker. Each service is a project-owned process with its config,
 * data and log under `.data/` (git-ignored); every operation is idempotent: `up` on a running service
 * only waits for readiness, `down` on a stopped one does nothing.
 *
 * - Kafka: Apache Kafka's own jars from Maven Central (deploy/local/kafka/pom.xml), single node in
 *   KRaft mode (broker + controller), run with the machine's Java.
 * - ClickHouse: `clickhouse` on PATH (the official single binary), else `clickhouse-server`, else
 *   Debian's package installed with apt-get.
 *
 * When KAFKA_BROKERS or CLICKHOUSE_URL is set, that service is external: nothing is started.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const ROOT = new URL('../../', import.meta.url).pathname;
const HERE = new URL('./', import.meta.url).pathname;

export interface StackOptions {
  readonly dataDir: string;
  readonly kafkaPort: number;
  readonly kafkaControllerPort: number;
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
  return {
    dataDir: env.LOCAL_DATA_DIR || join(ROOT, '.data'),
    kafkaPort: port('KAFKA_PORT', 9092),
    kafkaControllerPort: port('KAFKA_CONTROLLER_PORT', 9093),
    clickhouseHttpPort: port('CLICKHOUSE_HTTP_PORT', 8123),
    clickhouseTcpPort: port('CLICKHOUSE_TCP_PORT', 9000),
    externalKafka: env.KAFKA_BROKERS || undefined,
    externalClickhouse: env.CLICKHOUSE_URL || undefined,
    log,
  };
}

export interface Endpoints {
  readonly kafkaBrokers: string;
  readonly clickhouseUrl: string;
}

export function endpoints(o: StackOptions): Endpoints {
  return {
    kafkaBrokers: o.externalKafka ?? `127.0.0.1:${o.kafkaPort}`,
    clickhouseUrl: o.externalClickhouse ?? `http://127.0.0.1:${o.clickhouseHttpPort}`,
  };
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

function kafkaDir(o: StackOptions): string {
  return join(o.dataDir, 'kafka');
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

function kafkaProperties(o: StackOptions, logDir: string): string {
  return [
    '# generated by deploy/local/stack.ts; edits are overwritten',
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.bootstrap.servers=127.0.0.1:${o.kafkaControllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${o.kafkaPort},CONTROLLER://127.0.0.1:${o.kafkaControllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${o.kafkaPort},CONTROLLER://127.0.0.1:${o.kafkaControllerPort}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    `log.dirs=${logDir}`,
    'num.partitions=3',
    'auto.create.topics.enable=false',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=10',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    // A single local node has no reason to wait for more members before the first rebalance.
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

export async function kafkaUp(o: StackOptions): Promise<void> {
  if (o.externalKafka) {
    o.log(`kafka: external (${o.externalKafka}), not started`);
    return;
  }
  const dir = kafkaDir(o);
  const pidFile = join(dir, 'kafka.pid');
  const logFile = join(dir, 'kafka.log');
  mkdirSync(dir, { recursive: true });
  if (readPid(pidFile) === undefined) {
    if (await portOpen(o.kafkaPort))
      throw new Error(`kafka: port ${o.kafkaPort} is taken by another process`);
    const libs = mavenJars('kafka', o.log);
    const cp = `${libs}/*`;
    const props = join(dir, 'server.properties');
    const logDir = join(dir, 'data');
    writeFileSync(props, kafkaProperties(o, logDir));
    if (!existsSync(join(logDir, 'meta.properties'))) {
      o.log('kafka: formatting storage (KRaft, standalone controller)');
      execFileSync(
        java(),
        [
          '-cp',
          cp,
          'kafka.tools.StorageTool',
          'format',
          '--standalone',
          '-t',
          randomUUID().replace(/-/g, '').slice(0, 22),
          '-c',
          props,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
    }
    o.log(`kafka: starting on 127.0.0.1:${o.kafkaPort} (log ${logFile})`);
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
  }
  await waitFor(
    'kafka',
    async () => {
      if (readPid(pidFile) === undefined) throw new Error(`kafka: process exited; see ${logFile}`);
      return (await portOpen(o.kafkaPort)) && readFileSync(logFile, 'utf8').includes('Kafka Server started');
    },
    90_000,
    logFile,
  );
  o.log('kafka: ready');
}

export async function kafkaDown(o: StackOptions): Promise<void> {
  if (o.externalKafka) return;
  await stopPid('kafka', join(kafkaDir(o), 'kafka.pid'), o.log);
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
  const kafkaPid = readPid(join(kafkaDir(o), 'kafka.pid'));
  const chPid = readPid(join(clickhouseDir(o), 'clickhouse.pid'));
  const [, kPort = ''] = e.kafkaBrokers.split(',')[0]?.split(':') ?? [];
  return [
    {
      name: 'kafka',
      mode: o.externalKafka ? 'external' : 'local',
      pid: kafkaPid,
      ready: await portOpen(Number(kPort) || o.kafkaPort, e.kafkaBrokers.split(':')[0] || '127.0.0.1'),
      endpoint: e.kafkaBrokers,
    },
    {
      name: 'clickhouse',
      mode: o.externalClickhouse ? 'external' : 'local',
      pid: chPid,
      ready: await clickhousePing(e.clickhouseUrl),
      endpoint: e.clickhouseUrl,
    },
  ];
}
