#!/usr/bin/env bash
# The test command (README): installs what the suites need, then runs everything — formatting,
# clippy, the import-cycle and doc-path checks, the docs build, unit + simulation + integration
# tests, the pusher-js compatibility suite against the real binary, and the Autobahn|Testsuite
# fuzzing run against the echo endpoint.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

# Debian packages the suites need, installed only when missing (CI machines start clean).
apt_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if command -v apt-get >/dev/null; then
    $sudo apt-get update -qq && $sudo apt-get install -y -qq "$@"
  else
    echo "test.sh: please install: $*" >&2
    exit 1
  fi
}
command -v node >/dev/null && command -v npm >/dev/null || { step "installing Node.js"; apt_install nodejs npm; }
python3 -c 'import venv, ensurepip' 2>/dev/null || { step "installing python3-venv"; apt_install python3-venv; }
# The multi-node tests start their own redis-server processes on free ports.
command -v redis-server >/dev/null || { step "installing redis-server"; apt_install redis-server; }
# The Redis-over-TLS test makes a throwaway CA with the openssl command.
command -v openssl >/dev/null || { step "installing openssl"; apt_install openssl; }

step "formatting"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "no import cycles between files (and the checker's own tests)"
python3 scripts/import_cycles/test_check.py -q
python3 scripts/import_cycles/check.py

step "every file the docs and comments name exists (and the checker's own tests)"
python3 scripts/doc_paths/test_check.py -q
python3 scripts/doc_paths/check.py

step "the README's Limits table matches the limits files"
python3 scripts/limits_table/generate.py --check

step "docs build warning-free (cargo doc --no-deps)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --document-private-items

step "unit, simulation and integration tests"
cargo test --workspace

step "benches build (cargo bench --no-run)"
cargo bench --workspace --no-run

step "fuzz smoke (every target a few seconds; skipped without nightly)"
scripts/fuzz.sh smoke

step "building the server and its bridge for the external suites"
cargo build -p ringcast -p ringcast-bridge
bin="${CARGO_TARGET_DIR:-$PWD/target}/debug/ringcast"

step "pusher-js compatibility suite"
(cd tests/compat && npm ci --no-audit --no-fund --loglevel=error && RINGCAST_BIN="$bin" npm test)

step "Python SDK + pysher compatibility suite"
RINGCAST_BIN="$bin" tests/compat-python/run.sh -q

step "Autobahn|Testsuite (RFC 6455)"
scripts/autobahn.sh "$bin"

step "host tuning check script"
tuning/tests/check_test.sh

step "all tests passed"
