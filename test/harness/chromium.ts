/**
 * A headless Chromium for browser tests: Debian's chromium package driven by playwright-core (no
 * downloaded browser build). Installed with apt-get on first use when /usr/bin/chromium is missing;
 * concurrent callers in one process share the install.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type BrowserContext, chromium } from 'playwright-core';

const run = promisify(execFile);
export const CHROMIUM_PATH = '/usr/bin/chromium';

/** Flags for a quiet, self-contained headless run (no network side traffic, no profile reuse). */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let installing: Promise<string> | undefined;

/** Path of the chromium binary, installing Debian's package if needed (needs root, as in CI). */
export function chromiumPath(log: (line: string) => void = () => {}): Promise<string> {
  installing ??= (async () => {
    if (existsSync(CHROMIUM_PATH)) return CHROMIUM_PATH;
    log('installing chromium with apt-get');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    await run('apt-get', ['update', '-q'], { env, maxBuffer: 64 * 1024 * 1024 });
    await run('apt-get', ['install', '-y', '-q', '--no-install-recommends', 'chromium'], {
      env,
      maxBuffer: 64 * 1024 * 1024,
    });
    if (!existsSync(CHROMIUM_PATH))
      throw new Error(`apt-get installed chromium but ${CHROMIUM_PATH} is missing`);
    return CHROMIUM_PATH;
  })();
  return installing;
}

export interface LaunchedBrowser {
  readonly context: BrowserContext;
  /** Closes the browser and deletes its profile folder. */
  readonly close: () => Promise<void>;
}

/**
 * Launches chromium with a fresh profile folder (playwright passes it as --user-data-dir; it refuses
 * the flag in `args`, hence the persistent-context launch).
 */
export async function launchChromium(log?: (line: string) => void): Promise<LaunchedBrowser> {
  const executablePath = await chromiumPath(log);
  const userDataDir = mkdtempSync(join(tmpdir(), 'chromium-profile-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: CHROMIUM_FLAGS,
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}
