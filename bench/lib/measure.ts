/**
 * Small measuring helpers shared by the scenarios: percentiles, a process's resident memory from
 * /proc, and a bounded poll loop.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

export function summary(values: readonly number[]): { p50: number; p95: number; p99: number; max: number } {
  const s = [...values].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p95: percentile(s, 95), p99: percentile(s, 99), max: percentile(s, 100) };
}

/** Resident set size of a process in bytes (Linux), 0 when it is gone. */
export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Clock ticks per second of /proc's CPU times (USER_HZ: 100 on every Linux this runs on). */
const TICKS_PER_S = 100;

/** CPU seconds (user + system) a process has used so far (Linux), 0 when it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    // Fields after the parenthesised command name: state is field 3, utime 14 and stime 15.
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(f[11]) + Number(f[12])) / TICKS_PER_S;
  } catch {
    return 0;
  }
}

/** CPU seconds used so far by every process whose command name (/proc/<pid>/comm) starts with `name`. */
export function cpuSecondsOf(name: string): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').startsWith(name)) total += cpuSeconds(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return total;
}

/** Busy CPU seconds of the whole machine so far, all cores (/proc/stat: all but idle and iowait). */
export function machineBusySeconds(): number {
  const [, ...ticks] = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/);
  const n = ticks.map(Number);
  const total = n.reduce((a, b) => a + b, 0);
  return (total - (n[3] ?? 0) - (n[4] ?? 0)) / TICKS_PER_S;
}

/** Seconds the machine's cores have waited on I/O so far, all cores (/proc/stat's iowait). */
export function machineIowaitSeconds(): number {
  const ticks = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/);
  return Number(ticks[5] ?? 0) / TICKS_PER_S;
}

/** CPU seconds so far of each part of a pipeline running on this machine. */
export interface PipelineCpu {
  readonly collector: number;
  readonly consumer: number;
  readonly clickhouse: number;
  /** Every Java process: Kafka is the only one while a bench runs. */
  readonly kafka: number;
  /** The whole machine's busy seconds, all cores. */
  readonly all: number;
  readonly iowait: number;
}

export function pipelineCpu(collectorPid: number, consumerPid: number): PipelineCpu {
  return {
    collector: cpuSeconds(collectorPid),
    consumer: cpuSeconds(consumerPid),
    clickhouse: cpuSecondsOf('clickhouse'),
    kafka: cpuSecondsOf('java'),
    all: machineBusySeconds(),
    iowait: machineIowaitSeconds(),
  };
}

/** Samples a process's RSS every `everyMs` until stopped; `max()` is the peak seen. */
export function rssSampler(pid: number, everyMs = 250): { max: () => number; stop: () => void } {
  let peak = rssBytes(pid);
  const timer = setInterval(() => {
    peak = Math.max(peak, rssBytes(pid));
  }, everyMs);
  return {
    max: () => Math.max(peak, rssBytes(pid)),
    stop: () => clearInterval(timer),
  };
}

/** Calls `check` every `everyMs` until it returns true; throws after `timeoutMs`. */
export async function pollUntil(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  everyMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(everyMs);
  }
  throw new Error(`${what}: not reached within ${timeoutMs} ms`);
}

export const MB = 1024 * 1024;

export function round(n: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
