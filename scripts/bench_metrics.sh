#!/usr/bin/env bash
# bench_metrics.sh -- how long GET /metrics takes with many topics.
#   TOPICS (default 10000) topics, each with one durable subscriber and
#   a few events, then SCRAPES (default 20) timed scrapes; prints the
#   median and the slowest. The target is under 100 ms at 10,000 topics.
# Env: HERALD_BIN (default target/release/herald), TOPICS, SCRAPES.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${HERALD_BIN:-target/release/herald}"
TOPICS="${TOPICS:-10000}"; SCRAPES="${SCRAPES:-20}"
[ -x "$BIN" ] || cargo build --release -p herald
DIR="$(mktemp -d)"
"$BIN" serve --listen 127.0.0.1:0 --data "$DIR/data" --fsync interval >"$DIR/log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do grep -q " listening addr=" "$DIR/log" && break; sleep 0.1; done
ADDR=$(grep -m1 " listening addr=" "$DIR/log" | sed 's/.*addr=\([^ ]*\).*/\1/')
HTTP=$(grep -m1 "http bound" "$DIR/log" | sed 's/.*addr=\([^ ]*\).*/\1/')
echo "broker $ADDR, http $HTTP: creating $TOPICS topics"
# One connection per step: a named subscriber on every topic (so the
# per-topic gauges are not all zero), away when the events arrive.
{
  echo "replies errors"
  echo "name bench"
  for i in $(seq "$TOPICS"); do echo "create t$i"; echo "sub t$i 1"; done
  echo "quit"
} | nc -q 30 "${ADDR%:*}" "${ADDR##*:}" >/dev/null
{
  echo "replies errors"
  for i in $(seq "$TOPICS"); do
    for j in 1 2 3; do echo "pub t$i {\"id\":\"$j\",\"msg\":\"m\"}"; done
  done
  echo "quit"
} | nc -q 30 "${ADDR%:*}" "${ADDR##*:}" >/dev/null
LINES=$(curl -s "http://$HTTP/metrics" | wc -l)
echo "/metrics: $LINES lines, $(curl -s "http://$HTTP/metrics" | wc -c) bytes"
for _ in $(seq "$SCRAPES"); do
  curl -s -o /dev/null -w '%{time_total}\n' "http://$HTTP/metrics"
done | sort -n | awk '{t[NR]=$1} END {printf "scrape: median %.1f ms, max %.1f ms over %d scrapes\n", t[int((NR+1)/2)]*1000, t[NR]*1000, NR}'
