/**
 * HTTP load with autocannon's CLI in its own process (so the generator, the service and the bench
 * each have an event loop), no pipelining, a fixed number of connections, bounded by duration.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './processes.ts';

const run = promisify(execFile);

export interface LoadOptions {
  readonly url: string;
  readonly body: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly connections: number;
  readonly durationS: number;
  /** Overall requests per second across all connections; unlimited when absent. */
  readonly rate?: number;
  /** Where the body file is written. */
  readonly workDir: string;
}

export interface LoadResult {
  readonly ok: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly seconds: number;
  readonly okPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

interface AutocannonJson {
  '2xx': number;
  non2xx: number;
  errors: number;
  timeouts: number;
  duration: number;
  latency: { p50: number; p99: number };
}

export async function autocannon(o: LoadOptions): Promise<LoadResult> {
  const bodyFile = join(o.workDir, `body-${process.hrtime.bigint()}.json`);
  writeFileSync(bodyFile, o.body);
  const args = [
    `${ROOT}node_modules/autocannon/autocannon.js`,
    '--json',
    '-m',
    'POST',
    '-c',
    String(o.connections),
    '-p',
    '1',
    '-d',
    String(o.durationS),
    '-t',
    '30',
    '-i',
    bodyFile,
    ...Object.entries(o.headers).flatMap(([k, v]) => ['-H', `${k}=${v}`]),
    ...(o.rate === undefined ? [] : ['-R', String(Math.max(1, Math.round(o.rate)))]),
    o.url,
  ];
  const { stdout } = await run(process.execPath, args, {
    maxBuffer: 64 * 1024 * 1024,
    timeout: (o.durationS + 60) * 1000,
  });
  const r = JSON.parse(stdout) as AutocannonJson;
  return {
    ok: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    seconds: r.duration,
    okPerS: r['2xx'] / r.duration,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
  };
}
