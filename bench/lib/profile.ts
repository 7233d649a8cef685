/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`): self time per function and per package,
 * the "where does the time go" table of RESULTS.md.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT } from './processes.ts';

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  readonly file: string;
  readonly totalMs: number;
  /** Sampled time minus (idle): the denominator of every share. */
  readonly busyMs: number;
  /** Top functions by self time: name (file:line), ms, share of all samples. */
  readonly functions: { frame: string; ms: number; share: number }[];
  /** Self time per package / area (node_modules package, node internals, project folder, GC, idle). */
  readonly areas: { area: string; ms: number; share: number }[];
}

function areaOf(url: string, fn: string): string {
  if (url === '') return fn.startsWith('(') ? fn : '(native)';
  if (url.startsWith('node:')) return 'node core';
  const path = url.replace(/^file:\/\//, '');
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
  if (nm) return nm[1] as string;
  const rel = relative(ROOT, path);
  return rel.split('/').slice(0, 2).join('/');
}

export function summariseProfile(file: string, top = 12): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n.callFrame]));
  const fnMs = new Map<string, number>();
  const areaMs = new Map<string, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
    const ms = (p.timeDeltas[i] ?? 0) / 1000;
    const cf = byId.get(id);
    if (!cf) return;
    total += ms;
    const where =
      cf.url === '' ? '' : ` ${relative(ROOT, cf.url.replace(/^file:\/\//, ''))}:${cf.lineNumber + 1}`;
    const frame = `${cf.functionName || '(anonymous)'}${where}`;
    fnMs.set(frame, (fnMs.get(frame) ?? 0) + ms);
    const area = areaOf(cf.url, cf.functionName);
    areaMs.set(area, (areaMs.get(area) ?? 0) + ms);
  });
  // Shares are of busy time: an idle event loop is headroom, not a cost.
  const busy = total - (areaMs.get('(idle)') ?? 0);
  areaMs.delete('(idle)');
  fnMs.delete('(idle)');
  const rank = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
  return {
    file: relative(ROOT, file),
    totalMs: total,
    busyMs: busy,
    functions: rank(fnMs).map(([frame, ms]) => ({ frame, ms, share: ms / busy })),
    areas: rank(areaMs).map(([area, ms]) => ({ area, ms, share: ms / busy })),
  };
}

/** The newest .cpuprofile in `dir`. */
export function newestProfile(dir: string): string | undefined {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .sort();
  const last = files.at(-1);
  return last === undefined ? undefined : join(dir, last);
}
