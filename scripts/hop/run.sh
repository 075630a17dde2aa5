#!/bin/bash
# Cross-node hop (docs/performance.md): two nodes linked through one redis-server, then through a
# three-master Redis Cluster, alternating, 3 rounds; publishes on node A (hop) or B (local),
# subscribers on node B. Needs release builds of ringcast, ringcast-bridge, ringcast-loadtest,
# and free ports 6390, 6711-6712, 7101-7103. Results: $OUT/run-ROUND-MODE-WHERE.log.
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/ringcast-hop}; mkdir -p "$OUT"
R=target/release
. scripts/hop/two_nodes.sh
start_redis
load() { # $1 rest port
  taskset -c 1 $R/ringcast-loadtest --url ws://127.0.0.1:6712 --rest http://127.0.0.1:$1 --profile loadtest/profiles/broadcast.json --connections 100 --rate 200 --duration-s 10 --out ${OUT}/loadtest-out 2>&1
}
for round in 1 2 3; do
  for mode in single cluster; do
    start_nodes $mode hop
    for where in hop local; do
      port=6711; [ $where = local ] && port=6712
      echo "=== round $round $mode $where"
      load $port > ${OUT}/run-$round-$mode-$where.log
    done
    stop_nodes
  done
done
stop_redis
