#!/usr/bin/env python3
"""Two builds of ringcast side by side, in one sitting: for every run and every point, each
build is started fresh (pinned to CPU 0), measured with ringcast-loadtest (pinned to CPU 1) and
stopped; the builds alternate in order from run to run, so a noisy minute hurts both.
Prints one line per run and a Markdown table of medians (delivered/s, lost, p50, p99, server
CPU seconds in the window).

  scripts/ab_compare.py --build before=/path/a/ringcast --build after=target/release/ringcast \\
      --loadtest target/release/ringcast-loadtest --runs 3 \\
      --point broadcast:5 --point broadcast:80 --point channels:7500

Standard library only; needs `taskset`.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

PORT = 6700
APP = ("app-id", "app-key", "app-secret")


def wait_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def run_point(binary: str, loadtest: str, profile: str, rate: int, root: str) -> dict:
    server = subprocess.Popen(
        ["taskset", "-c", "0", binary, "--port", str(PORT), "--bind-address", "127.0.0.1",
         "--shards", "1", "--log-level", "warn", "--app-id", APP[0], "--app-key", APP[1],
         "--app-secret", APP[2]],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(PORT)
        out = tempfile.mkdtemp(dir=root)
        subprocess.run(
            ["taskset", "-c", "1", loadtest, "--url", f"ws://127.0.0.1:{PORT}", "--rest",
             f"http://127.0.0.1:{PORT}", "--app-id", APP[0], "--key", APP[1], "--secret", APP[2],
             "--profile", f"loadtest/profiles/{profile}.json", "--connections", "10000",
             "--rate", str(rate), "--duration-s", "10", "--server-pid", str(server.pid),
             "--out", out],
            check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(out, "result.json")) as f:
            result = json.load(f)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    # Let the sockets of the last run leave TIME_WAIT pressure behind before the next start.
    time.sleep(2)
    latency = result["latency"]
    return {
        "delivered_per_s": result["delivered_per_s"],
        "lost": result["lost"],
        "p50_ms": latency["p50_us"] / 1000,
        "p99_ms": latency["p99_us"] / 1000,
        "cpu_s": (result.get("server") or {}).get("window_cpu_s"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", action="append", required=True, help="LABEL=PATH")
    parser.add_argument("--loadtest", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--point", action="append", required=True, help="PROFILE:RATE")
    args = parser.parse_args()
    builds = [tuple(b.split("=", 1)) for b in args.build]
    points = [(p.split(":")[0], int(p.split(":")[1])) for p in args.point]
    root = tempfile.mkdtemp(prefix="ab-compare-")
    results: dict = {}
    for run in range(args.runs):
        order = builds if run % 2 == 0 else list(reversed(builds))
        for profile, rate in points:
            for label, binary in order:
                r = run_point(binary, args.loadtest, profile, rate, root)
                results.setdefault((profile, rate, label), []).append(r)
                print(f"run {run + 1} {profile} {rate}/s {label}: "
                      f"deliv/s={r['delivered_per_s']:.0f} lost={r['lost']} "
                      f"p50={r['p50_ms']:.1f}ms p99={r['p99_ms']:.1f}ms cpu={r['cpu_s']}",
                      flush=True)
    print()
    print("| profile | publishes/s | build | delivered/s | lost (max) | p50 | p99 (runs → median) | server CPU s |")
    print("|---|---:|---|---:|---:|---:|---|---:|")
    for profile, rate in points:
        for label, _ in builds:
            rs = results[(profile, rate, label)]
            p99s = " / ".join(f"{r['p99_ms']:.1f}" for r in rs)
            cpus = [r["cpu_s"] for r in rs if r["cpu_s"] is not None]
            cpu = f"{statistics.median(cpus):.2f}" if cpus else "-"
            print(f"| {profile} | {rate} | {label} | "
                  f"{statistics.median(r['delivered_per_s'] for r in rs) / 1000:.1f} k | "
                  f"{max(r['lost'] for r in rs)} | "
                  f"{statistics.median(r['p50_ms'] for r in rs):.1f} ms | "
                  f"{p99s} → **{statistics.median(r['p99_ms'] for r in rs):.1f} ms** | {cpu} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
