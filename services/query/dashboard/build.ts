/**
 * Bundles the dashboard (src/main.ts with uPlot, src/style.css with uPlot's CSS) into one
 * directory with index.html, so the page loads nothing from the network but the query API.
 * main.ts runs this at start (about 100 ms), so the served page always matches the code and no
 * built file is kept in git: the output goes under .data/ (git-ignored, not linted).
 * `node services/query/dashboard/build.ts [dir]` builds it by hand.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const HERE = new URL('./', import.meta.url).pathname;
export const DEFAULT_DASHBOARD_DIR = new URL('../../../.data/query-dashboard', import.meta.url).pathname;

export async function buildDashboard(outDir: string = DEFAULT_DASHBOARD_DIR): Promise<string> {
  mkdirSync(outDir, { recursive: true });
  await build({
    entryPoints: { app: join(HERE, 'src', 'main.ts'), 'app-style': join(HERE, 'src', 'style.css') },
    bundle: true,
    format: 'esm',
    target: ['es2022'],
    platform: 'browser',
    minify: true,
    outdir: outDir,
    logLevel: 'silent',
  });
  copyFileSync(join(HERE, 'index.html'), join(outDir, 'index.html'));
  return outDir;
}

if (import.meta.main) {
  const dir = await buildDashboard(process.argv[2]);
  process.stdout.write(`dashboard built in ${dir}\n`);
}
