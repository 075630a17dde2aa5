#!/usr/bin/env bash
# Fuzzing with cargo-fuzz (libFuzzer, AddressSanitizer, debug assertions): the targets are in
# fuzz/fuzz_targets/, what each checks and the results are in docs/fuzzing.md.
#
#   scripts/fuzz.sh smoke                 every target for a few seconds; exit 1 on a crash
#   scripts/fuzz.sh long TARGET RUNS [libFuzzer options…]
#                                         one target for RUNS executions (the long runs)
#   scripts/fuzz.sh list                  the targets
#
# FUZZ_SANITIZER=none builds without AddressSanitizer (debug assertions and overflow checks stay
# on), about 5x faster: for the stateful `shard` target, whose code under test (ringcast-core)
# forbids `unsafe`; the parsers' targets keep ASan for simd-json's unsafe code.
#
# Needs the nightly toolchain (`cargo +nightly`); without it, prints SKIPPED and exits 0.
# Installs cargo-fuzz when it is missing. One job, one worker, under `nice -n 10`: the
# machine is shared. The seeds in fuzz/corpus/<target>/ are read, never written: what the
# fuzzer finds goes to fuzz/corpus-work/<target>/ and crashes to fuzz/artifacts/<target>/
# (both git-ignored); the build is in fuzz/target/.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

usage() {
    sed -n '4,8p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

mode=${1:-}
[ -n "$mode" ] || usage

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "SKIPPED: fuzzing needs the nightly toolchain (rustup toolchain install nightly)"
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing: installing it (cargo install cargo-fuzz --locked)"
    cargo install cargo-fuzz --locked
fi

sanitizer=${FUZZ_SANITIZER:-address}
# The fuzz build's own target directory, whatever the caller's CARGO_TARGET_DIR says; one per
# sanitizer, so switching does not rebuild the other.
if [ "$sanitizer" = address ]; then
    export CARGO_TARGET_DIR="$root/fuzz/target"
else
    export CARGO_TARGET_DIR="$root/fuzz/target-$sanitizer"
fi

targets() {
    cargo +nightly fuzz list --fuzz-dir "$root/fuzz"
}

build() {
    echo "== building the fuzz targets (nightly, release, sanitizer $sanitizer, debug assertions)"
    nice -n 10 cargo +nightly fuzz build --fuzz-dir "$root/fuzz" -s "$sanitizer"
}

# run TARGET LIBFUZZER-OPTIONS…: one libFuzzer process; its exit status. With -jobs=1 libFuzzer
# runs the fuzzing in a child whose log is fuzz-0.log in the current directory (and prints it
# when the child ends): the run happens in fuzz/target/logs/TARGET/, outside the sources.
run() {
    local target=$1
    shift
    local fuzz="$root/fuzz"
    mkdir -p "$fuzz/corpus-work/$target" "$fuzz/corpus/$target" "$fuzz/artifacts/$target" \
        "$CARGO_TARGET_DIR/logs/$target"
    # The work corpus first: libFuzzer adds what it finds to the first directory only.
    (
        cd "$CARGO_TARGET_DIR/logs/$target"
        nice -n 10 cargo +nightly fuzz run --fuzz-dir "$fuzz" -s "$sanitizer" "$target" \
            "$fuzz/corpus-work/$target" "$fuzz/corpus/$target" -- \
            -jobs=1 -workers=1 -timeout=20 -print_final_stats=1 "$@"
    )
}

case "$mode" in
list)
    targets
    ;;
smoke)
    seconds=${FUZZ_SMOKE_SECONDS:-8}
    build
    failed=()
    for target in $(targets); do
        echo "== $target: ${seconds} s"
        log=$(mktemp)
        if run "$target" "-max_total_time=$seconds" >"$log" 2>&1; then
            grep -E '^#[0-9]+.*DONE' "$log" | tail -n 1 || true
        else
            cat "$log"
            echo "FAILED: $target (crash input in fuzz/artifacts/$target/)"
            failed+=("$target")
        fi
        rm -f "$log"
    done
    if [ ${#failed[@]} -gt 0 ]; then
        echo "fuzz smoke: ${#failed[@]} target(s) crashed: ${failed[*]}"
        exit 1
    fi
    echo "fuzz smoke: every target ran without a crash"
    ;;
long)
    [ $# -ge 3 ] || usage
    target=$2
    runs=$3
    shift 3
    targets | grep -x "$target" >/dev/null || { echo "no fuzz target named $target"; exit 2; }
    build
    run "$target" "-runs=$runs" "$@"
    ;;
*)
    usage
    ;;
esac
