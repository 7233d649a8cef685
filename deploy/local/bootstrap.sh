#!/usr/bin/env bash
# Usage: bootstrap.sh COMMAND [ARG...]
# Installs the project's npm dependencies when node_modules is missing or older than the lock file
# (with them a supported Node: the `node` devDependency), then runs COMMAND with node_modules/.bin
# first on PATH. npm adds that folder to PATH only when it exists as a script starts, which on a
# fresh clone it does not, so the PATH is set here rather than trusted from npm.
set -euo pipefail
cd "$(dirname "$0")/../.."
stamp=node_modules/.install-stamp
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
  echo "[bootstrap] npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
  touch "$stamp"
fi
export PATH="$PWD/node_modules/.bin:$PATH"
exec "$@"
