/**
 * Local pipeline commands (see README):
 *   start      everything (stack, migrations, services) plus demo traffic, in the foreground;
 *              Ctrl-C stops it all again
 *   up         the same without demo traffic, in the background; returns when every part is ready
 *   down       stops services and stack
 *   status     what runs where
 *   stack-up   Kafka + ClickHouse only (what the tests need)
 * KAFKA_NODES=3 with any of them runs Kafka as a 3-node KRaft cluster (replication factor 3,
 * min.insync.replicas 2; docs/KAFKA.md) instead of a single broker; `down` stops either.
 * Progress goes to stderr; `up` prints the endpoints on stdout.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { LOCAL_WRITE_KEY, pipelineDown, pipelineServices, pipelineUp, servicePid } from './pipeline.ts';
import { endpoints, type StackOptions, stackOptions, status, up } from './stack.ts';

const ROOT = new URL('../../', import.meta.url).pathname;

const log = (line: string): void => {
  process.stderr.write(`[local] ${line}\n`);
};

async function printStatus(o: StackOptions): Promise<boolean> {
  const rows = await status(o);
  let allReady = rows.every((r) => r.ready);
  for (const r of rows) {
    process.stdout.write(
      `${r.name.padEnd(11)} ${r.mode.padEnd(9)} ${String(r.pid ?? '-').padEnd(8)} ${r.ready ? 'ready' : 'down '} ${r.endpoint}\n`,
    );
  }
  for (const s of pipelineServices(endpoints(o), process.env)) {
    const pid = servicePid(o, s.name);
    const ready =
      pid !== undefined &&
      (await fetch(s.readyUrl).then(
        (r) => r.ok,
        () => false,
      ));
    allReady &&= ready;
    process.stdout.write(
      `${s.name.padEnd(11)} ${'local'.padEnd(9)} ${String(pid ?? '-').padEnd(8)} ${ready ? 'ready' : 'down '} ${s.readyUrl.replace(/\/readyz$/, '')}\n`,
    );
  }
  return allReady;
}

/** Runs the demo generator in the foreground until it ends or a signal arrives; then stops everything. */
async function start(o: StackOptions): Promise<number> {
  const services = await pipelineUp(o, process.env);
  const collector = services.find((s) => s.name === 'collector')?.readyUrl.replace(/\/readyz$/, '') ?? '';
  const query = services.find((s) => s.name === 'query')?.readyUrl.replace(/\/readyz$/, '') ?? '';
  log(`pipeline ready: collector ${collector} (write key ${LOCAL_WRITE_KEY}), dashboard ${query}/`);
  log('sending demo traffic; Ctrl-C stops the demo and the pipeline');
  const demo = spawn(process.execPath, [join(ROOT, 'services/demo/main.ts')], {
    cwd: ROOT,
    stdio: 'inherit',
    env: { ...process.env, COLLECTOR_URL: collector, DEMO_WRITE_KEY: LOCAL_WRITE_KEY },
  });
  const stopDemo = (): void => {
    demo.kill('SIGTERM');
  };
  process.once('SIGINT', stopDemo);
  process.once('SIGTERM', stopDemo);
  const code = await new Promise<number>((resolve) => demo.once('exit', (c) => resolve(c ?? 0)));
  log('demo ended; stopping the pipeline');
  await pipelineDown(o);
  return code;
}

async function main(command: string | undefined): Promise<number> {
  const o = stackOptions(process.env, log);
  switch (command) {
    case 'start':
      return start(o);
    case 'up': {
      await pipelineUp(o, process.env);
      await printStatus(o);
      return 0;
    }
    case 'stack-up': {
      const e = await up(o);
      process.stdout.write(`KAFKA_BROKERS=${e.kafkaBrokers}\nCLICKHOUSE_URL=${e.clickhouseUrl}\n`);
      return 0;
    }
    case 'down':
      await pipelineDown(o);
      return 0;
    case 'status':
      return (await printStatus(o)) ? 0 : 3;
    default:
      process.stderr.write('usage: node deploy/local/cli.ts start|up|down|status|stack-up\n');
      return 2;
  }
}

main(process.argv[2]).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    log(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  },
);
