#!/usr/bin/env bash
# Tests of tuning/check on the real host (no fake /proc): exit codes, one line per knob,
# line format, and that impossible targets FAIL. Prints "N passed, N failed"; exits 1 on a failure.
set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
check="$here/../check"
passed=0
failed=0

ok() {
    passed=$((passed + 1))
    printf 'ok    %s\n' "$1"
}
not_ok() {
    failed=$((failed + 1))
    printf 'FAIL  %s\n' "$1"
    if [[ -n "${2:-}" ]]; then
        printf '%s\n' "$2" | sed 's/^/      | /'
    fi
}

# --help exits 0 and shows the usage
out=$("$check" --help 2>&1)
rc=$?
if ((rc == 0)) && [[ "$out" == *"--connections N"* ]]; then ok "--help exits 0 with usage"; else not_ok "--help exits 0 with usage (rc=$rc)" "$out"; fi

# usage errors exit 2
for args in "" "--connections" "--connections abc" "--connections 0" "--connections 10 --shards 0" \
    "--connections 10 --shards 65" "--connections 10 --role nope" "--connections 10 --bogus"; do
    # shellcheck disable=SC2086 # word splitting of the argument list is intended
    "$check" $args >/dev/null 2>&1
    rc=$?
    if ((rc == 2)); then ok "usage error exits 2: '$args'"; else not_ok "usage error exits 2: '$args' (rc=$rc)"; fi
done

# a small target: exit 0 or 1, never 2+; every knob has a line of the documented format
out=$("$check" --connections 100 2>&1)
rc=$?
if ((rc == 0 || rc == 1)); then ok "--connections 100 exits 0 or 1 (rc=$rc)"; else not_ok "--connections 100 exits 0 or 1 (rc=$rc)" "$out"; fi

# the exit code follows the FAIL lines
nfail=$(printf '%s\n' "$out" | grep -c '^FAIL ')
if { ((nfail == 0)) && ((rc == 0)); } || { ((nfail > 0)) && ((rc == 1)); }; then
    ok "exit code matches FAIL lines ($nfail FAIL, rc=$rc)"
else
    not_ok "exit code matches FAIL lines ($nfail FAIL, rc=$rc)" "$out"
fi

knobs=(
    "RLIMIT_NOFILE hard (shell)"
    "RLIMIT_NOFILE soft (shell)"
    "fs.nr_open"
    "fs.file-max"
    "RLIMIT_MEMLOCK (shell)"
    "net.core.somaxconn"
    "net.ipv4.tcp_max_syn_backlog"
    "net.core.netdev_max_backlog"
    "net.ipv4.tcp_mem (pages)"
    "net.ipv4.tcp_rmem"
    "net.ipv4.tcp_wmem"
    "RAM (estimate)"
    "net.ipv4.ip_local_port_range"
    "net.ipv4.tcp_tw_reuse"
    "net.netfilter.nf_conntrack_max"
    "kernel"
    "kernel.io_uring_disabled"
    "seccomp (this shell)"
    "CPUs vs shards"
)
for knob in "${knobs[@]}"; do
    if printf '%s\n' "$out" | grep -qE "^(OK|WARN|FAIL) +$(printf '%s' "$knob" | sed 's/[][().*+?^$|\\]/\\&/g')  "; then
        ok "line for $knob"
    else
        not_ok "line for $knob" "$out"
    fi
done
if printf '%s\n' "$out" | grep -qE '^(OK|WARN|FAIL) +NIC '; then ok "line for NIC IRQ/RPS"; else not_ok "line for NIC IRQ/RPS" "$out"; fi

# every non-comment line starts with a status
bad=$(printf '%s\n' "$out" | grep -vE '^(#|OK  |WARN  |FAIL  )' || true)
if [[ -z "$bad" ]]; then ok "every line is a status line or a # comment"; else not_ok "every line is a status line or a # comment" "$bad"; fi

# 100 connections fit in any usable host's fd limits
if printf '%s\n' "$out" | grep -qE '^FAIL +(RLIMIT_NOFILE|fs\.nr_open|fs\.file-max)'; then
    hard=$(ulimit -Hn)
    if [[ "$hard" != unlimited ]] && ((hard < 1124)); then
        ok "no fd FAIL at 100 connections (skipped: hard limit $hard is really below 1124)"
    else
        not_ok "no fd FAIL at 100 connections" "$out"
    fi
else
    ok "no fd FAIL at 100 connections"
fi

# an absurd target FAILs on nofile, nr_open, file-max and RAM, and exits 1
out=$("$check" --connections 1000000000000 2>&1)
rc=$?
if ((rc == 1)); then ok "10^12 connections exits 1"; else not_ok "10^12 connections exits 1 (rc=$rc)" "$out"; fi
for knob in "RLIMIT_NOFILE hard \(shell\)" "fs\.nr_open" "fs\.file-max" "RAM \(estimate\)"; do
    if printf '%s\n' "$out" | grep -qE "^FAIL +$knob  .*[^-]$"; then
        ok "10^12: FAIL line with a fix for $knob"
    else
        not_ok "10^12: FAIL line with a fix for $knob" "$out"
    fi
done
if printf '%s\n' "$out" | grep -qE '^FAIL +RLIMIT_NOFILE hard \(shell\).*LimitNOFILE='; then
    ok "10^12: nofile fix names LimitNOFILE"
else
    not_ok "10^12: nofile fix names LimitNOFILE" "$out"
fi

# memlock below glommio's 512 KiB floor FAILs (a subshell may lower its own soft limit)
out=$(ulimit -S -l 256 2>/dev/null && "$check" --connections 100 --shards 1 2>&1)
rc=$?
if printf '%s\n' "$out" | grep -qE '^FAIL +RLIMIT_MEMLOCK \(shell\) +256 KiB'; then
    ok "memlock 256 KiB FAILs"
else
    not_ok "memlock 256 KiB FAILs (rc=$rc)" "$out"
fi

# --pid reads a process's limits (our own shell stands in for ringcast)
out=$("$check" --connections 100 --pid $$ 2>&1)
if printf '%s\n' "$out" | grep -qE "^(OK|FAIL) +RLIMIT_NOFILE \(pid $$ "; then
    ok "--pid reports the process's RLIMIT_NOFILE"
else
    not_ok "--pid reports the process's RLIMIT_NOFILE" "$out"
fi
"$check" --connections 100 --pid 999999999 >/dev/null 2>&1
rc=$?
if ((rc == 2)); then ok "--pid of a missing process exits 2"; else not_ok "--pid of a missing process exits 2 (rc=$rc)"; fi

# proxy role: ports and TIME_WAIT reuse are judged; memlock/io_uring lines are not printed
out=$("$check" --connections 100 --role proxy 2>&1)
if printf '%s\n' "$out" | grep -qE '^(OK|WARN) +net\.ipv4\.ip_local_port_range .* ports' &&
    ! printf '%s\n' "$out" | grep -q 'RLIMIT_MEMLOCK'; then
    ok "--role proxy judges ports, skips engine lines"
else
    not_ok "--role proxy judges ports, skips engine lines" "$out"
fi

printf '%d passed, %d failed\n' "$passed" "$failed"
((failed == 0))
