#!/usr/bin/env bash
# Python compatibility suite: the official `pusher` server SDK and the `pysher` client against
# the real ringcast binary.
#   tests/compat-python/run.sh [pytest args...]
# Env: RINGCAST_BIN (default <repo>/target/debug/ringcast; build: cargo build -p ringcast),
#      PYTHON (default python3).
# The virtualenv <repo>/.venv-compat-python is reused while requirements.txt (and the Python
# version) are unchanged; otherwise it is rebuilt from scratch.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENV="$REPO/.venv-compat-python"
REQS="$HERE/requirements.txt"
STAMP="$VENV/.requirements.sha256"
PYTHON="${PYTHON:-python3}"

die() { echo "compat-python: ERROR: $*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null || die "$PYTHON not found"
[ -f "$REQS" ] || die "missing $REQS"

want="$( { sha256sum "$REQS" | cut -d' ' -f1; "$PYTHON" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)"
have=""
[ -f "$STAMP" ] && have="$(cat "$STAMP")"

if [ "$want" != "$have" ] || ! "$VENV/bin/python" -c 'pass' 2>/dev/null; then
  echo "compat-python: creating virtualenv $VENV" >&2
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV" || die "python3 -m venv failed"
  # --no-deps: requirements.txt pins every package; pip check then proves nothing is missing.
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$REQS" \
    || die "pip install -r $REQS failed"
  "$VENV/bin/python" -m pip check || die "pinned requirements are inconsistent (pip check)"
  echo "$want" > "$STAMP"
else
  echo "compat-python: reusing virtualenv $VENV" >&2
fi

export RINGCAST_BIN="${RINGCAST_BIN:-$REPO/target/debug/ringcast}"
[ -x "$RINGCAST_BIN" ] || die "ringcast binary not found or not executable: $RINGCAST_BIN (cd $REPO && cargo build -p ringcast)"

cd "$HERE"
export PYTHONDONTWRITEBYTECODE=1
exec "$VENV/bin/python" -m pytest "$@"
