/**
 * Where `npm run build:dashboard` (build.ts) writes the bundle the query service serves. Apart from
 * build.ts so the service never loads esbuild, a build tool absent from a production install.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../../lib/config.ts';

/** The Dockerfile copies exactly this folder: keep the name and path. */
export const DASHBOARD_DIST_DIR = new URL('./dist', import.meta.url).pathname;

/** `dir`, or a ConfigError saying how to build it when its index.html is missing. */
export function builtDashboard(dir: string): string {
  if (existsSync(join(dir, 'index.html'))) return dir;
  throw new ConfigError([
    `QUERY_DASHBOARD_DIR: no built dashboard in ${dir} (run \`npm run build:dashboard\` first)`,
  ]);
}
