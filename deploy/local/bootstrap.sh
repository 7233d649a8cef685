#!/usr/bin/env bash
# Installs the project's npm dependencies (and with them a supported Node, the `node` devDependency,
# which npm puts first on PATH for every npm script) when node_modules is missing or older than the
# lock file. Idempotent and quiet when there is nothing to do.
set -euo pipefail
cd "$(dirname "$0")/../.."
stamp=node_modules/.install-stamp
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
  echo "[bootstrap] npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
  touch "$stamp"
fi
