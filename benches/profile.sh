#!/usr/bin/env bash
# Counts the instructions a server spends per event under `herald bench`
# load, with valgrind's callgrind: instruction counts do not depend on how
# busy the machine is, so two builds can be compared on a shared machine.
#
#   CARGO_PROFILE_RELEASE_DEBUG=true CARGO_TARGET_DIR=target-prof \
#     cargo build --release -p herald          # symbols for the report only
#   benches/profile.sh                          # herald serve --fsync always
#   SERVER="target-prof/release/herald" benches/profile.sh
#   SERVER_CMD="/tmp/ceiling/target/release/ceiling --fsync always --listen {addr} --data {data}" \
#     benches/profile.sh                        # the bare relay of ../shared/ceiling
#
# Environment: BENCH (the load generator, default target/release/herald),
# MESSAGES (default 50000), BENCH_FLAGS (default `--prefetch 256`), OUT (the
# callgrind file, default /tmp/herald-profile.<pid>.cg), PORT (default 38411).
#
# The server runs under callgrind; its counters are zeroed once it listens
# and dumped when the bench has finished, so start-up and shutdown are not
# counted. Prints total instructions (Ir) and Ir per event, then the top
# functions (inclusive) with callgrind_annotate. Under valgrind the server
# is ~50x slower, so its batches are bigger than at full speed: per-batch
# costs (write, fdatasync, wake-ups) weigh a little less than they would.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-38411}
ADDR=127.0.0.1:$PORT
MESSAGES=${MESSAGES:-50000}
BENCH=${BENCH:-target/release/herald}
BENCH_FLAGS=${BENCH_FLAGS:---prefetch 256}
SERVER=${SERVER:-target-prof/release/herald}
DATA=$(mktemp -d /tmp/herald-profile-data.XXXXXX)
OUT=${OUT:-/tmp/herald-profile.$$.cg}
DEFAULT_CMD="$SERVER serve --listen {addr} --data {data} --fsync always"
CMD=${SERVER_CMD:-$DEFAULT_CMD}
CMD=${CMD//\{addr\}/$ADDR}
CMD=${CMD//\{data\}/$DATA}

# shellcheck disable=SC2086
valgrind --tool=callgrind --callgrind-out-file="$OUT" --dump-instr=no \
  $CMD >"$OUT.log" 2>&1 &
VG=$!
trap 'kill "$VG" 2>/dev/null || true; rm -rf "$DATA"' EXIT
for _ in $(seq 600); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done
callgrind_control -z "$VG" >/dev/null
# shellcheck disable=SC2086
"$BENCH" bench --addr "$ADDR" --messages "$MESSAGES" $BENCH_FLAGS --json >"$OUT.bench.json"
callgrind_control -d "$VG" >/dev/null
kill -TERM "$VG"
wait "$VG" || true
# The dump made by `callgrind_control -d` is the one with the bench only.
DUMP=$(ls -t "$OUT".* | grep -E '\.[0-9]+$' | head -1)
read -r EVENTS ACKED < <(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["published"], j["acked"])' "$OUT.bench.json")
IR=$(callgrind_annotate "$DUMP" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1; exit}')
echo "dump: $DUMP"
echo "published: $EVENTS  acked deliveries: $ACKED  instructions: $IR"
echo "per published event: $((IR / EVENTS))  per acked delivery: $((IR / ACKED))"
callgrind_annotate --inclusive=yes "$DUMP" 2>/dev/null | sed -n '1,60p' | tail -n +20
