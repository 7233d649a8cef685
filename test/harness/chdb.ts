/**
 * A current ClickHouse engine for the SQL conformance checks: chDB (ClickHouse in-process, from PyPI)
 * in a project-owned virtualenv under .data/. 18.16 is what runs here as a server; chDB checks that
 * the same SQL also runs, with the same results, on current ClickHouse (what docker-compose ships).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const CHDB_VERSION = '4.4.0';
const ROOT = new URL('../../', import.meta.url).pathname;
const VENV = join(ROOT, '.data', 'venv-chdb');
const PY = join(VENV, 'bin', 'python');

/** Creates the virtualenv and installs chdb once (a few hundred MB; cached by pip afterwards). */
export function ensureChdb(): string {
  const stamp = join(VENV, `.chdb-${CHDB_VERSION}`);
  if (existsSync(stamp)) return PY;
  mkdirSync(join(ROOT, '.data'), { recursive: true });
  if (!existsSync(PY)) execFileSync('python3', ['-m', 'venv', VENV], { stdio: 'inherit' });
  execFileSync(PY, ['-m', 'pip', 'install', '-q', '--disable-pip-version-check', `chdb==${CHDB_VERSION}`], {
    stdio: 'inherit',
  });
  writeFileSync(stamp, '');
  return PY;
}

const RUNNER = `
import json, sys, chdb
from chdb import session
req = json.load(sys.stdin)
s = session.Session(req["path"])
out = []
for stmt in req["statements"]:
    res = s.query(stmt["sql"], stmt.get("format", "CSV"))
    out.append(res.bytes().decode() if hasattr(res, "bytes") else str(res))
s.close()
json.dump({"version": chdb.engine_version if hasattr(chdb, "engine_version") else chdb.__version__, "results": out}, sys.stdout)
`;

export interface ChdbStatement {
  readonly sql: string;
  /** Output format of a SELECT (JSONEachRow, CSV, ...). */
  readonly format?: string;
}

/**
 * Runs the statements in order in one chDB session whose data lives in `dir` (a fresh folder per
 * check). Returns each statement's output text. Throws with chDB's error on the first failure.
 */
export function runChdb(
  dir: string,
  statements: readonly ChdbStatement[],
): { version: string; results: string[] } {
  const py = ensureChdb();
  const r = spawnSync(py, ['-c', RUNNER], {
    input: JSON.stringify({ path: dir, statements }),
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`chDB failed (exit ${r.status}):\n${r.stderr}`);
  return JSON.parse(r.stdout) as { version: string; results: string[] };
}
