/**
 * A headless Chromium for browser tests: Debian's chromium package driven by playwright-core (no
 * downloaded browser build). Installed with apt-get on first use when /usr/bin/chromium is missing;
 * concurrent callers in one process share the install.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
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

/**
 * A site for a browser SDK test: every path is a page titled `title` that loads `script` (the
 * SDK's browser build) from /sdk.js. Served on "localhost", where the collector is on 127.0.0.1:
 * another origin, as for a real site (CORS and preflights apply). Resolves to its origin.
 */
export async function sdkSite(
  script: string | Buffer,
  title = 'app',
): Promise<{ readonly origin: string; readonly close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    if (req.url === '/sdk.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
    else
      res
        .writeHead(200, { 'content-type': 'text/html' })
        .end(`<!doctype html><title>${title}</title><p>app</p><script src="/sdk.js"></script>`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    origin: `http://localhost:${typeof address === 'object' && address ? address.port : 0}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
