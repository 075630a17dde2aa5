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
pkill -f "ringcast --port 671" ; sleep 0.5; rm -rf ${OUT}/n71*
taskset -c 0 redis-server --port 6390 --bind 127.0.0.1 --save "" --appendonly no --daemonize yes --pidfile ${OUT}/single.pid --logfile ${OUT}/single.log
for p in 7101 7102 7103; do mkdir -p ${OUT}/n$p; taskset -c 0 redis-server --port $p --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file nodes-$p.conf --dir ${OUT}/n$p --save '' --appendonly no --daemonize yes --pidfile ${OUT}/n$p/pid --logfile ${OUT}/n$p/log; done
sleep 1
redis-cli --cluster create 127.0.0.1:7101 127.0.0.1:7102 127.0.0.1:7103 --cluster-replicas 0 --cluster-yes >${OUT}/create.log 2>&1
until redis-cli -p 7101 cluster info | grep -q cluster_state:ok; do sleep 0.2; done
sleep 2
start_nodes() {
  for port in 6711 6712; do
    taskset -c 0 $R/ringcast --port $port --bind-address 127.0.0.1 --shards 1 --adapter-driver redis "$@" --redis-prefix cpu --app-id app-id --app-key app-key --app-secret app-secret >${OUT}/node$port.log 2>&1 &
  done
  sleep 4
}
stop_nodes() { pkill -f "ringcast --port 671"; sleep 2; }
bridge_ticks() { # utime + stime of every ringcast-bridge, in clock ticks
  local total=0
  for pid in $(pgrep -x ringcast-bridge); do
    total=$((total + $(awk '{print $14 + $15}' /proc/$pid/stat)))
  done
  echo $total
}
for round in 1 2 3; do
  for mode in single cluster; do
    if [ $mode = single ]; then start_nodes --redis-url 127.0.0.1:6390; else start_nodes --redis-cluster --redis-url 127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103; fi
    before=$(bridge_ticks)
    taskset -c 1 $R/ringcast-loadtest --url ws://127.0.0.1:6712 --rest http://127.0.0.1:6711 --profile loadtest/profiles/channels.json --connections 2000 --rate $RATE --duration-s 10 --out ${OUT}/loadtest-out > ${OUT}/cpu-$round-$mode.log 2>&1
    after=$(bridge_ticks)
    echo "bridge CPU s: $(echo "($after - $before) / $(getconf CLK_TCK)" | bc -l)" >> ${OUT}/cpu-$round-$mode.log
    stop_nodes
  done
done
redis-cli -p 6390 shutdown nosave; for p in 7101 7102 7103; do redis-cli -p $p shutdown nosave; done
