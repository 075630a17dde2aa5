#!/bin/bash
# Bridge CPU with many channels (docs/performance.md): two nodes linked through one redis-server,
# then through a three-master Redis Cluster, alternating, 3 rounds; the `channels` profile
# publishes on node A over 200 channels (10 subscribers each on node B), so every message
# crosses the bridges; CPU of both bridges from /proc. Needs release builds and free ports 6390,
# 6711-6712, 7101-7103. Results: $OUT/cpu-ROUND-MODE.log.
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/ringcast-bridge-cpu}; mkdir -p "$OUT"
R=target/release
RATE=${RATE:-5000}
. scripts/hop/two_nodes.sh
start_redis
bridge_ticks() { # utime + stime of every ringcast-bridge, in clock ticks
  local total=0
  for pid in $(pgrep -x ringcast-bridge); do
    total=$((total + $(awk '{print $14 + $15}' /proc/$pid/stat)))
  done
  echo $total
}
for round in 1 2 3; do
  for mode in single cluster; do
    start_nodes $mode cpu
    before=$(bridge_ticks)
    taskset -c 1 $R/ringcast-loadtest --url ws://127.0.0.1:6712 --rest http://127.0.0.1:6711 --profile loadtest/profiles/channels.json --connections 2000 --rate $RATE --duration-s 10 --out ${OUT}/loadtest-out > ${OUT}/cpu-$round-$mode.log 2>&1
    after=$(bridge_ticks)
    echo "bridge CPU s: $(echo "($after - $before) / $(getconf CLK_TCK)" | bc -l)" >> ${OUT}/cpu-$round-$mode.log
    stop_nodes
  done
done
stop_redis
