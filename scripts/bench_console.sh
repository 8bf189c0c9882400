#!/usr/bin/env bash
# bench_console.sh -- what watching costs: `herald bench` prefetch-256
#   throughput (acked per second) on a fresh broker, RUNS (default 3) times without and RUNS
#   times with a /metrics scraper (curl every second) and the web console
#   open in headless chromium, interleaved; prints each run and the medians.
# Env: HERALD_BIN (default target/release/herald), RUNS, MESSAGES (300000).
# Needs curl, node, chromium and `npm ci` in crates/herald/tests/browser.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${HERALD_BIN:-target/release/herald}"
RUNS="${RUNS:-3}"; MESSAGES="${MESSAGES:-300000}"
PORT="${PORT:-18700}"; HTTP_PORT=$((PORT + 1))
TMP="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT

one_run() { # $1 = plain|watched
  local data="$TMP/data-$RANDOM" watchers=()
  "$BIN" serve --listen "127.0.0.1:$PORT" --data "$data" >"$TMP/log" 2>&1 &
  local serve=$!; PIDS+=("$serve")
  for _ in $(seq 100); do grep -q " listening addr=" "$TMP/log" && break; sleep 0.1; done
  if [ "$1" = watched ]; then
    (while true; do curl -s "127.0.0.1:$HTTP_PORT/metrics" >/dev/null; sleep 1; done) &
    watchers+=($!)
    node scripts/console-keep-open.mjs "http://127.0.0.1:$HTTP_PORT/" >"$TMP/node" 2>&1 &
    watchers+=($!)
    for _ in $(seq 100); do grep -q "console open" "$TMP/node" && break; sleep 0.1; done
    sleep 2 # the console is polling
  fi
  "$BIN" bench --addr "127.0.0.1:$PORT" --prefetch 256 --messages "$MESSAGES" --json \
    | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["acked_per_sec"]))' >"$TMP/rate"
  for w in "${watchers[@]}"; do kill "$w"; wait "$w" 2>/dev/null || true; done
  kill "$serve"; wait "$serve" 2>/dev/null || true
  rm -rf "$data"
  cat "$TMP/rate"
}

plain=(); watched=()
for i in $(seq "$RUNS"); do
  p=$(one_run plain); plain+=("$p"); echo "run $i plain:   $p events/s"
  w=$(one_run watched); watched+=("$w"); echo "run $i watched: $w events/s"
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
mp=$(median "${plain[@]}"); mw=$(median "${watched[@]}")
echo "median plain $mp, watched $mw events/s; watched/plain = $(awk "BEGIN {printf \"%.3f\", $mw/$mp}")"
