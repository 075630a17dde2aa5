#!/usr/bin/env python3
"""Two builds of ringcast side by side, in one sitting: for every run and every point, each
build is started fresh (pinned to CPU 0), measured with ringcast-loadtest (pinned to CPU 1) and
stopped; the builds alternate in order from run to run, so a noisy minute hurts both.
Prints one line per run and a Markdown table of medians (delivered/s, lost, p50, p99, p99.9,
max, server CPU seconds in the window, server RSS per connection).

  scripts/ab_compare.py --build before=/path/a/ringcast --build after=target/release/ringcast \\
      --loadtest target/release/ringcast-loadtest --runs 3 \\
      --point broadcast:5 --point broadcast:80 --point channels:7500

A "build" may be the same binary run differently: `--tls LABEL` runs that build with TLS on its
client port (`--tls-cert-file`/`--tls-key-file`) and the load generator on `wss://`/`https://`
with `--ca-file`; the certificate comes from a throwaway CA made with `openssl` (an RSA 2048
key, or ECDSA P-256 with `--tls-key ecdsa`):

  scripts/ab_compare.py --build plain=target/release/ringcast --build tls=target/release/ringcast \\
      --tls tls --loadtest target/release/ringcast-loadtest --runs 3 \\
      --point broadcast:5 --point broadcast:80 --point idle:0

On a shared machine, `--quiet-below CPUS` waits before each run until the host's other work
has stayed under that many CPUs for 2 s (at most `--quiet-wait-s`); every run reports
`others`, the CPU seconds processes other than the server and the load generator took while it
ran, so a disturbed run can be seen.

Standard library only; needs `taskset` (and `openssl` with `--tls`).
"""

import argparse
import json
import os
import resource
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


def host_busy_s() -> float:
    """CPU seconds the whole host has been busy (all CPUs), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    """CPU seconds of this script's waited-for descendants (the servers and load generators)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wait_quiet(below_cpus: float, max_wait_s: float) -> None:
    """Waits until the host's busy time over 2 s stays under `below_cpus` CPUs."""
    deadline = time.time() + max_wait_s
    while True:
        before = host_busy_s()
        time.sleep(2)
        busy = (host_busy_s() - before) / 2
        if busy < below_cpus or time.time() >= deadline:
            return


def make_tls_files(root: str, key_type: str) -> dict:
    """A CA and a certificate for 127.0.0.1 it signed (an RSA 2048 or ECDSA P-256 key), in
    `root`."""
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=root, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=ab-ca",
            "-keyout", "ca.key", "-out", "ca.crt")
    with open(os.path.join(root, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    new_key = (["-newkey", "rsa:2048"] if key_type == "rsa"
               else ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
    openssl("req", *new_key, "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", "server.key", "-out", "server.csr")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.crt")
    return {"ca": os.path.join(root, "ca.crt"), "cert": os.path.join(root, "server.crt"),
            "key": os.path.join(root, "server.key")}


def run_point(binary: str, loadtest: str, profile: str, rate: int, root: str,
              tls: dict | None) -> dict:
    server_args = ["taskset", "-c", "0", binary, "--port", str(PORT), "--bind-address",
                   "127.0.0.1", "--shards", "1", "--log-level", "warn", "--app-id", APP[0],
                   "--app-key", APP[1], "--app-secret", APP[2]]
    ws, rest, extra = f"ws://127.0.0.1:{PORT}", f"http://127.0.0.1:{PORT}", []
    if tls:
        server_args += ["--tls-cert-file", tls["cert"], "--tls-key-file", tls["key"]]
        ws, rest, extra = f"wss://127.0.0.1:{PORT}", f"https://127.0.0.1:{PORT}", [
            "--ca-file", tls["ca"]]
    busy_before, ours_before = host_busy_s(), children_cpu_s()
    server = subprocess.Popen(server_args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(PORT)
        out = tempfile.mkdtemp(dir=root)
        subprocess.run(
            ["taskset", "-c", "1", loadtest, "--url", ws, "--rest", rest, *extra,
             "--app-id", APP[0], "--key", APP[1], "--secret", APP[2],
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
    others_s = (host_busy_s() - busy_before) - (children_cpu_s() - ours_before)
    # Let the sockets of the last run leave TIME_WAIT pressure behind before the next start.
    time.sleep(2)
    latency = result["latency"]
    server_readings = result.get("server") or {}
    return {
        "delivered_per_s": result["delivered_per_s"],
        "lost": result["lost"],
        "p50_ms": latency["p50_us"] / 1000,
        "p99_ms": latency["p99_us"] / 1000,
        "p999_ms": latency.get("p999_us", 0) / 1000,
        "max_ms": latency.get("max_us", 0) / 1000,
        "cpu_s": server_readings.get("window_cpu_s"),
        "rss_per_conn": server_readings.get("rss_per_connection_bytes"),
        "subscribed": result.get("subscribed"),
        "loadgen_cpu_s": result.get("loadgen_worker_cpu_s"),
        "others_s": others_s,
        "connects_per_s": result.get("connects_per_s"),
    }


def median_or_dash(values, fmt: str) -> str:
    values = [v for v in values if v is not None]
    return fmt.format(statistics.median(values)) if values else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", action="append", required=True, help="LABEL=PATH")
    parser.add_argument("--tls", action="append", default=[], help="LABEL of a build run with TLS")
    parser.add_argument("--loadtest", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--point", action="append", required=True, help="PROFILE:RATE")
    parser.add_argument("--quiet-below", type=float, default=None,
                        help="before each run, wait for the host's other work to stay under this many CPUs")
    parser.add_argument("--quiet-wait-s", type=float, default=600)
    parser.add_argument("--tls-key", choices=["rsa", "ecdsa"], default="rsa",
                        help="the server certificate's key: RSA 2048 or ECDSA P-256")
    args = parser.parse_args()
    builds = [tuple(b.split("=", 1)) for b in args.build]
    points = [(p.split(":")[0], int(p.split(":")[1])) for p in args.point]
    root = tempfile.mkdtemp(prefix="ab-compare-")
    tls = make_tls_files(root, args.tls_key) if args.tls else None
    results: dict = {}
    for run in range(args.runs):
        order = builds if run % 2 == 0 else list(reversed(builds))
        for profile, rate in points:
            for label, binary in order:
                if args.quiet_below is not None:
                    wait_quiet(args.quiet_below, args.quiet_wait_s)
                r = run_point(binary, args.loadtest, profile, rate, root,
                              tls if label in args.tls else None)
                results.setdefault((profile, rate, label), []).append(r)
                rss = r["rss_per_conn"]
                print(f"run {run + 1} {profile} {rate}/s {label}: "
                      f"deliv/s={r['delivered_per_s']:.0f} lost={r['lost']} "
                      f"p50={r['p50_ms']:.1f}ms p99={r['p99_ms']:.1f}ms "
                      f"p99.9={r['p999_ms']:.1f}ms max={r['max_ms']:.1f}ms cpu={r['cpu_s']} "
                      f"rss/conn={rss if rss is None else round(rss)} "
                      f"subscribed={r['subscribed']} connects/s={r['connects_per_s']} "
                      f"loadgen-cpu={r['loadgen_cpu_s']} others={r['others_s']:.1f}s",
                      flush=True)
    print()
    print("| profile | publishes/s | build | delivered/s | lost (max) | p50 | p99 (runs → median) "
          "| p99.9 | max | server CPU s | RSS per connection (runs → median) |")
    print("|---|---:|---|---:|---:|---:|---|---:|---:|---:|---|")
    for profile, rate in points:
        for label, _ in builds:
            rs = results[(profile, rate, label)]
            p99s = " / ".join(f"{r['p99_ms']:.1f}" for r in rs)
            rsss = [r["rss_per_conn"] for r in rs if r["rss_per_conn"] is not None]
            rss = (" / ".join(f"{v:,.0f}" for v in rsss) + f" → **{statistics.median(rsss):,.0f} B**"
                   if rsss else "-")
            print(f"| {profile} | {rate} | {label} | "
                  f"{statistics.median(r['delivered_per_s'] for r in rs) / 1000:.1f} k | "
                  f"{max(r['lost'] for r in rs)} | "
                  f"{statistics.median(r['p50_ms'] for r in rs):.1f} ms | "
                  f"{p99s} → **{statistics.median(r['p99_ms'] for r in rs):.1f} ms** | "
                  f"{statistics.median(r['p999_ms'] for r in rs):.1f} ms | "
                  f"{statistics.median(r['max_ms'] for r in rs):.1f} ms | "
                  f"{median_or_dash([r['cpu_s'] for r in rs], '{:.2f}')} | {rss} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
