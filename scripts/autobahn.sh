#!/usr/bin/env bash
# Run the Autobahn|Testsuite fuzzing client (wstest 0.8.2) against ringcast's
# echo endpoint and fail unless every case of sections 1-7 and 10 comes out OK,
# NON-STRICT or INFORMATIONAL (both `behavior` and `behaviorClose`).
# Sections 9 (performance) and 12-13 (permessage-deflate) are not run;
# autobahntestsuite 0.8.2 has no sections 8 or 11.
#
# Usage:
#   scripts/autobahn.sh <path-to-ringcast-binary>
#       starts `<bin> --port P --bind-address 127.0.0.1 --shards 2 --echo-path /echo`
#       on a free port P, tests ws://127.0.0.1:P/echo, stops the server.
#   AUTOBAHN_URL=ws://127.0.0.1:9001/echo scripts/autobahn.sh
#       tests an already running server instead (no binary is started).
#
# Environment (all optional):
#   AUTOBAHN_URL              test this URL instead of starting the binary
#   AUTOBAHN_PYTHON2          Python 2.7 interpreter to build .venv-autobahn with
#   AUTOBAHN_STARTUP_TIMEOUT  seconds to wait for the server's port (default 30)
#   AUTOBAHN_RUN_TIMEOUT      seconds the whole wstest run may take (default 1200)
#
# Output: reports/autobahn/ (index.html for people, index.json for the checker,
# server.log, wstest.log, the generated spec). Exit status 0 = all cases pass,
# or Python 2.7 is missing (then it prints SKIPPED); anything else exits non-zero.
#
# wstest needs Python 2.7, so it lives in its own virtualenv, .venv-autobahn/,
# built once by a virtualenv<20.22 (the last line that can create 2.7 envs)
# kept in .venv-tools/. Both are gitignored and reused on later runs.

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
VENV_DIR="$REPO_ROOT/.venv-autobahn"
TOOLS_VENV="$REPO_ROOT/.venv-tools"
REPORT_DIR="$REPO_ROOT/reports/autobahn"
SPEC_TEMPLATE="$SCRIPT_DIR/autobahn/fuzzingclient.json"
CHECKER="$SCRIPT_DIR/autobahn/check_report.py"
AGENT="ringcast"
STARTUP_TIMEOUT="${AUTOBAHN_STARTUP_TIMEOUT:-30}"
RUN_TIMEOUT="${AUTOBAHN_RUN_TIMEOUT:-1200}"

# Exact versions that install on Python 2.7 from PyPI and run wstest 0.8.2.
# pip 20.3.4 (what virtualenv seeds for 2.7) would resolve most of these by
# itself through Requires-Python, but pinning the whole set keeps every machine
# on the combination that was tested (Twisted 20.3.0 is the last release for
# Python 2; autobahntestsuite 0.8.2 insists on autobahn==0.10.9, txaio<=2.1.0).
# Changing this list rebuilds .venv-autobahn on the next run.
PINS=(
  autobahntestsuite==0.8.2
  autobahn==0.10.9
  txaio==2.1.0
  wsaccel==0.6.6
  ujson==2.0.3
  Twisted==20.3.0
  zope.interface==5.5.2
  Automat==22.10.0
  attrs==21.4.0
  constantly==15.1.0
  hyperlink==21.0.0
  idna==2.10
  incremental==22.10.0
  PyHamcrest==1.10.1
  six==1.17.0
  typing==3.10.0.0
  enum34==1.1.10
  ipaddress==1.0.23
  pyOpenSSL==21.0.0
  cryptography==3.3.2
  cffi==1.15.1
  pycparser==2.21
  service-identity==21.1.0
  pyasn1==0.5.1
  pyasn1-modules==0.3.0
  klein==20.6.0
  Tubes==0.2.1
  Werkzeug==1.0.1
  Jinja2==2.11.3
  MarkupSafe==1.1.1
  unittest2==1.1.0
  argparse==1.4.0
  linecache2==1.0.0
  traceback2==1.4.0
)
PINS_STAMP="$VENV_DIR/.ringcast-autobahn-pins"

# cryptography 3.3 warns about Python 2 on every import; it is noise here.
export PYTHONWARNINGS="ignore:Python 2 is no longer supported"

log() { printf 'autobahn: %s\n' "$*"; }
die() { printf 'autobahn: ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

# ---------------------------------------------------------------- arguments --
BIN=""
if [[ $# -gt 0 && ( "$1" == "-h" || "$1" == "--help" ) ]]; then
  usage; exit 0
fi
if [[ -n "${AUTOBAHN_URL:-}" ]]; then
  [[ $# -le 1 ]] || { usage >&2; exit 2; }
  [[ "$AUTOBAHN_URL" == ws://* ]] || die "AUTOBAHN_URL must be a ws:// URL, got '$AUTOBAHN_URL'"
  if [[ $# -eq 1 ]]; then log "AUTOBAHN_URL is set: not starting $1"; fi
else
  [[ $# -eq 1 ]] || { usage >&2; exit 2; }
  BIN="$1"
  [[ -f "$BIN" && -x "$BIN" ]] || die "ringcast binary '$BIN' does not exist or is not executable"
  BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
fi
[[ -f "$SPEC_TEMPLATE" ]] || die "missing $SPEC_TEMPLATE"
[[ -f "$CHECKER" ]] || die "missing $CHECKER"

# ------------------------------------------------------- Python 2.7 + wstest --
# True if $1 runs and is a Python 2.7. (pyenv's shims exist on PATH even when
# 2.7 isn't the selected version, and then fail, so "exists" is not enough.)
is_python27() {
  [[ -n "$1" && -x "$1" ]] &&
    "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (2, 7) else 1)' >/dev/null 2>&1
}

find_python27() {
  local candidates=() root c
  if command -v pyenv >/dev/null 2>&1 && root="$(pyenv root 2>/dev/null)"; then
    candidates+=("$root/versions/2.7.18/bin/python2.7" "$root"/versions/2.7*/bin/python2.7)
  fi
  candidates+=("$HOME/.pyenv/versions/2.7.18/bin/python2.7" "$HOME"/.pyenv/versions/2.7*/bin/python2.7)
  candidates+=("$(command -v python2.7 || true)" "$(command -v python2 || true)")
  for c in "${candidates[@]}"; do
    if is_python27 "$c"; then printf '%s\n' "$c"; return 0; fi
  done
  return 1
}

# The venv is reusable when it was built from the current pin list and wstest
# actually starts (its base interpreter may have been removed since).
venv_ready() {
  [[ -f "$PINS_STAMP" ]] &&
    [[ "$(cat "$PINS_STAMP")" == "$(printf '%s\n' "${PINS[@]}")" ]] &&
    "$VENV_DIR/bin/wstest" -a >/dev/null 2>&1
}

install_wstest() {
  local py2="$1" t0=$SECONDS install_log
  log "building $VENV_DIR with $py2 (one-time, about 30-60 s)"

  # virtualenv>=20.22 can no longer create Python 2.7 environments, so use an
  # older one from a Python 3 tools venv. `pip install` is a no-op when an
  # acceptable version is already there.
  command -v python3 >/dev/null 2>&1 || die "python3 is needed to create $TOOLS_VENV"
  if [[ ! -x "$TOOLS_VENV/bin/pip" ]]; then
    python3 -m venv "$TOOLS_VENV" || die "could not create $TOOLS_VENV"
  fi
  "$TOOLS_VENV/bin/pip" install --quiet 'virtualenv<20.22' ||
    die "could not install virtualenv<20.22 into $TOOLS_VENV"

  # --clear: a half-built venv from an interrupted run must not be reused.
  "$TOOLS_VENV/bin/virtualenv" --quiet --clear -p "$py2" "$VENV_DIR" ||
    die "virtualenv could not create $VENV_DIR from $py2"

  install_log="$VENV_DIR/pip-install.log"
  if ! "$VENV_DIR/bin/pip" install --no-input "${PINS[@]}" >"$install_log" 2>&1; then
    tail -n 40 "$install_log" >&2
    die "pip could not install autobahntestsuite into $VENV_DIR (full log: $install_log)"
  fi
  if ! "$VENV_DIR/bin/wstest" -a >"$VENV_DIR/wstest-version.log" 2>&1; then
    cat "$VENV_DIR/wstest-version.log" >&2
    die "wstest was installed but does not start"
  fi
  # Written last, so only a complete install counts as ready.
  printf '%s\n' "${PINS[@]}" >"$PINS_STAMP"
  log "installed wstest in $((SECONDS - t0))s"
}

if ! venv_ready; then
  if [[ -n "${AUTOBAHN_PYTHON2:-}" ]]; then
    # An explicit choice that doesn't work is a configuration error, not a skip.
    is_python27 "$AUTOBAHN_PYTHON2" || die "AUTOBAHN_PYTHON2='$AUTOBAHN_PYTHON2' is not a working Python 2.7"
    PY2="$AUTOBAHN_PYTHON2"
  elif ! PY2="$(find_python27)"; then
    log "SKIPPED — Python 2.7 not found (install pyenv 2.7.18)"
    exit 0
  fi
  install_wstest "$PY2"
fi
VPY="$VENV_DIR/bin/python"

# ------------------------------------------------------------------ the run --
# A fresh report directory, so a stale index.json can never be checked.
rm -rf "$REPORT_DIR"
mkdir -p "$REPORT_DIR"
SPEC="$REPORT_DIR/fuzzingclient.json"
SERVER_LOG="$REPORT_DIR/server.log"
WSTEST_LOG="$REPORT_DIR/wstest.log"

SERVER_PID=""
WSTEST_PID=""
cleanup() {
  local pid
  for pid in "$WSTEST_PID" "$SERVER_PID"; do
    [[ -n "$pid" ]] || continue
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      # Give it 5 s to shut down cleanly, then insist.
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Report why the server is gone (exit status, end of its log), then fail.
server_died() {
  local status=0
  wait "$SERVER_PID" || status=$?
  SERVER_PID=""
  log "---- last lines of $SERVER_LOG ----" >&2
  tail -n 30 "$SERVER_LOG" >&2 || true
  die "ringcast server exited $1 (exit status $status)"
}

if [[ -n "${AUTOBAHN_URL:-}" ]]; then
  URL="$AUTOBAHN_URL"
else
  # Ask the kernel for a free port. (It could be taken again before ringcast
  # binds it; then ringcast exits and server_died says so.)
  PORT="$("$VPY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
  URL="ws://127.0.0.1:$PORT/echo"
  log "starting $BIN on 127.0.0.1:$PORT (log: $SERVER_LOG)"
  "$BIN" --port "$PORT" --bind-address 127.0.0.1 --shards 2 --echo-path /echo >"$SERVER_LOG" 2>&1 &
  SERVER_PID=$!

  deadline=$((SECONDS + STARTUP_TIMEOUT))
  # bash's /dev/tcp: a connect attempt without needing nc or curl.
  until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do
    kill -0 "$SERVER_PID" 2>/dev/null || server_died "before accepting connections"
    ((SECONDS < deadline)) || die "ringcast did not accept connections on port $PORT within ${STARTUP_TIMEOUT}s"
    sleep 0.2
  done
fi

# Fill in the template with json, not sed, so any URL/path is quoted correctly.
"$VPY" - "$SPEC_TEMPLATE" "$SPEC" "$REPORT_DIR" "$URL" "$AGENT" <<'EOF'
import json, sys
template, out, outdir, url, agent = sys.argv[1:]
with open(template) as f:
    spec = json.load(f)
spec.pop("_comment", None)
spec["outdir"] = outdir
spec["servers"] = [{"agent": agent, "url": url}]
with open(out, "w") as f:
    json.dump(spec, f, indent=2, sort_keys=True)
EOF

EXPECTED="$("$VPY" - "$SPEC" <<'EOF'
import json, sys
from autobahntestsuite.case import Cases, CaseCategories, CaseSubCategories, CaseBasename, CaseSetname
from autobahntestsuite.caseset import CaseSet
spec = json.load(open(sys.argv[1]))
print(len(CaseSet(CaseSetname, CaseBasename, Cases, CaseCategories, CaseSubCategories).parseSpecCases(spec)))
EOF
)"
log "running $EXPECTED cases against $URL (log: $WSTEST_LOG)"

# wstest runs in the background so that this shell can notice the server
# dying mid-run: wstest itself would just stop at the first refused connection,
# write a partial report and exit 0.
t0=$SECONDS
(cd "$REPORT_DIR" && exec "$VENV_DIR/bin/wstest" -m fuzzingclient -s "$SPEC") >"$WSTEST_LOG" 2>&1 &
WSTEST_PID=$!
next_progress=$((SECONDS + 15))
while kill -0 "$WSTEST_PID" 2>/dev/null; do
  if [[ -n "$SERVER_PID" ]] && ! kill -0 "$SERVER_PID" 2>/dev/null; then
    last="$( (grep -o 'Running test case ID [0-9.]*' "$WSTEST_LOG" || true) | tail -n 1 | awk '{print $NF}')"
    server_died "during the run (last case started: ${last:-none})"
  fi
  if ((SECONDS - t0 > RUN_TIMEOUT)); then
    tail -n 20 "$WSTEST_LOG" >&2 || true
    die "wstest did not finish within ${RUN_TIMEOUT}s (AUTOBAHN_RUN_TIMEOUT)"
  fi
  if ((SECONDS >= next_progress)); then
    log "$(grep -c '^Running test case ID' "$WSTEST_LOG" || true)/$EXPECTED cases started"
    next_progress=$((SECONDS + 15))
  fi
  sleep 0.5
done
wstest_status=0
wait "$WSTEST_PID" || wstest_status=$?
WSTEST_PID=""
log "wstest finished in $((SECONDS - t0))s"

if [[ -n "$SERVER_PID" ]] && ! kill -0 "$SERVER_PID" 2>/dev/null; then
  server_died "during the run"
fi
if ((wstest_status != 0)); then
  tail -n 30 "$WSTEST_LOG" >&2 || true
  die "wstest exited with status $wstest_status"
fi
if grep -q '^Connection to .* failed' "$WSTEST_LOG"; then
  # Not fatal by itself: the checker below reports the cases that never ran.
  log "wstest: $(grep -m 1 '^Connection to .* failed' "$WSTEST_LOG")"
fi
[[ -f "$REPORT_DIR/index.json" ]] || { tail -n 30 "$WSTEST_LOG" >&2 || true; die "wstest wrote no $REPORT_DIR/index.json"; }

# The server is no longer needed; stop it before the verdict.
cleanup
SERVER_PID=""

log "report: $REPORT_DIR/index.html"
check_status=0
"$VPY" "$CHECKER" --agent "$AGENT" --spec "$SPEC" --expect-count "$EXPECTED" "$REPORT_DIR/index.json" || check_status=$?
exit "$check_status"
