# Sourced by the scripts of this folder: a redis-server on 6390 and a three-master Redis Cluster
# on 7101-7103 (all on CPU 0), and two ringcast nodes (6711, 6712, CPU 0) linked through one of
# them. Expects OUT (results folder) and R (folder of the release binaries).

start_redis() {
  pkill -f "ringcast --port 671"; sleep 0.5; rm -rf "${OUT}"/n71*
  taskset -c 0 redis-server --port 6390 --bind 127.0.0.1 --save "" --appendonly no --daemonize yes --pidfile "${OUT}/single.pid" --logfile "${OUT}/single.log"
  for p in 7101 7102 7103; do
    mkdir -p "${OUT}/n$p"
    taskset -c 0 redis-server --port $p --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file nodes-$p.conf --dir "${OUT}/n$p" --save '' --appendonly no --daemonize yes --pidfile "${OUT}/n$p/pid" --logfile "${OUT}/n$p/log"
  done
  sleep 1
  redis-cli --cluster create 127.0.0.1:7101 127.0.0.1:7102 127.0.0.1:7103 --cluster-replicas 0 --cluster-yes >"${OUT}/create.log" 2>&1
  until redis-cli -p 7101 cluster info | grep -q cluster_state:ok; do sleep 0.2; done
  sleep 2
}

stop_redis() {
  redis-cli -p 6390 shutdown nosave
  for p in 7101 7102 7103; do redis-cli -p $p shutdown nosave; done
}

# $1: single | cluster; $2: the Redis prefix.
start_nodes() {
  local redis_args=(--redis-url 127.0.0.1:6390)
  [ "$1" = cluster ] && redis_args=(--redis-cluster --redis-url 127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103)
  for port in 6711 6712; do
    taskset -c 0 "$R/ringcast" --port $port --bind-address 127.0.0.1 --shards 1 --adapter-driver redis "${redis_args[@]}" --redis-prefix "$2" --app-id app-id --app-key app-key --app-secret app-secret >"${OUT}/node$port.log" 2>&1 &
  done
  sleep 4
}

stop_nodes() { pkill -f "ringcast --port 671"; sleep 2; }
