#!/bin/bash
# Bridge cost of webhooks: one engine shard with client_event webhooks to a local receiver
# (receiver.js counts events), driver.js sends client events at RATE/s for 10 s; prints what
# was sent and received and the bridge's CPU ticks (1/100 s) over 13 s. Needs release builds
# (`cargo build --release -p ringcast -p ringcast-bridge`), node, and redis-server for QUEUE=redis.
# usage: scripts/webhook_perf/measure.sh RATE BATCHING(true|false) [QUEUE(local|redis)]
set -u
RATE=$1; BATCH=$2; QUEUE=${3:-local}
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$HERE/../../target/release
cd "$HERE"
pkill -f "hookperf-receiver" ; pkill -f "ringcast --port 7002"; sleep 0.3
node receiver.js 7001 hookperf-receiver > /tmp/webhook_perf_recv.log 2>&1 &
RECV=$!
EXTRA=""
if [ "$QUEUE" = redis ]; then
  redis-server --port 7003 --save '' --appendonly no >/dev/null 2>&1 &
  sleep 0.3
  EXTRA="--queue-driver redis --redis-url 127.0.0.1:7003 --redis-prefix perf$RANDOM"
fi
$BIN/ringcast --port 7002 --shards 1 --app-id 1 --app-key k --app-secret s --app-enable-client-messages true \
  --app-webhooks '[{"url":"http://127.0.0.1:7001/h","event_types":["client_event"]}]' \
  --app-has-webhook-batching-enabled $BATCH $EXTRA > /tmp/webhook_perf_engine.log 2>&1 &
ENG=$!
sleep 1.5
BR=$(pgrep -P $ENG ringcast-bridge)
read -r u0 s0 < <(awk '{print $14, $15}' /proc/$BR/stat)
node driver.js 7002 $RATE 10 > /tmp/webhook_perf_driver.log
sleep 3
read -r u1 s1 < <(awk '{print $14, $15}' /proc/$BR/stat)
CPU=$(( (u1 + s1 - u0 - s0) ))
SENT=$(cat /tmp/webhook_perf_driver.log)
LAST=$(tail -1 /tmp/webhook_perf_recv.log)
echo "rate=$RATE batching=$BATCH queue=$QUEUE driver=$SENT receiver=$LAST bridge_cpu_ticks=$CPU (of 13 s x 100)"
kill $ENG $RECV 2>/dev/null
[ "$QUEUE" = redis ] && redis-cli -p 7003 shutdown nosave >/dev/null 2>&1
sleep 0.5
