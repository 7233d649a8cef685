/**
 * Bundles the dashboard (src/main.ts with uPlot, src/style.css with uPlot's CSS) into one
 * directory with index.html, so the page loads nothing from the network but the query API.
 * A build step (`npm run build:dashboard`; `npm start`, `npm run up` and `npm test` run it first),
 * not something the service does at start: esbuild is a development tool. The output
 * (dist/, git-ignored) is never committed, so it cannot drift from the code.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { DASHBOARD_DIST_DIR } from './dist.ts';

const HERE = new URL('./', import.meta.url).pathname;

export async function buildDashboard(outDir: string = DASHBOARD_DIST_DIR): Promise<string> {
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
