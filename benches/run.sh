#!/usr/bin/env bash
# Runs the `herald bench` scenarios of benches/README.md and prints the
# Markdown table: every figure is the median of RUNS runs (default 3);
# throughputs also show (min–max).
#
#   cargo build --release -p herald
#   benches/run.sh                       # uses target/release/herald
#   HERALD=/path/to/herald RUNS=5 benches/run.sh
#
# Every run spawns its own broker (`--spawn`) on a fresh temporary data
# directory, so runs are independent and the peak RSS is that run's.
set -euo pipefail
HERALD=${HERALD:-target/release/herald}
RUNS=${RUNS:-3}
OUT=${OUT:-$(mktemp -d /tmp/herald-bench.XXXXXX)}
mkdir -p "$OUT"

# name | flags (besides --spawn --fsync MODE --json)
SCENARIOS=(
  "1 pub / 1 sub, prefetch 1|--messages 60000 --prefetch 1"
  "1 pub / 1 sub, prefetch 256|--messages 500000 --prefetch 256"
  "1 pub / 10 subs fan-out, prefetch 256|--messages 200000 --subscribers 10 --prefetch 256"
  "100 pubs / 100 subs, 100 topics, prefetch 1|--messages 3000 --publishers 100 --subscribers 100 --topics 100 --prefetch 1"
  "100 pubs / 100 subs, 100 topics, prefetch 256|--messages 10000 --publishers 100 --subscribers 100 --topics 100 --prefetch 256"
  "1 pub / 1 sub, prefetch 256, paced 2000/s|--messages 20000 --prefetch 256 --rate 2000"
)

# SKIP_RUN=1 only summarises the results already in $OUT.
for fsync in always interval; do
  [[ ${SKIP_RUN:-0} == 1 ]] && break
  for i in "${!SCENARIOS[@]}"; do
    flags=${SCENARIOS[$i]#*|}
    for run in $(seq 1 "$RUNS"); do
      # shellcheck disable=SC2086
      "$HERALD" bench --spawn --fsync "$fsync" --json $flags >"$OUT/$i-$fsync-$run.json"
    done
  done
done

python3 - "$OUT" "$RUNS" "${SCENARIOS[@]}" <<'PY'
import json, statistics, sys
out, runs, scenarios = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def med(values):
    return statistics.median(values)
def spread(values):
    return f"{med(values):,.0f} ({min(values):,.0f}–{max(values):,.0f})"
print("| scenario | fsync | published/s | delivered+acked/s | confirm p50 / p99 ms | e2e p50 / p90 / p99 / p99.9 / max ms | broker peak RSS MiB |")
print("|---|---|---|---|---|---|---|")
for i, scenario in enumerate(scenarios):
    name, flags = scenario.split("|", 1)
    for fsync in ("always", "interval"):
        rs = [json.load(open(f"{out}/{i}-{fsync}-{r}.json")) for r in range(1, runs + 1)]
        m = lambda f: med([f(r) for r in rs])
        c = lambda q: m(lambda r: r["confirm_latency"][q])
        e = lambda q: m(lambda r: r["e2e_latency"][q])
        print(f"| {name} | {fsync} | {spread([r['published_per_sec'] for r in rs])} "
              f"| {spread([r['acked_per_sec'] for r in rs])} "
              f"| {c('p50_ms'):.2f} / {c('p99_ms'):.2f} "
              f"| {e('p50_ms'):.1f} / {e('p90_ms'):.1f} / {e('p99_ms'):.1f} / {e('p99.9_ms'):.1f} / {e('max_ms'):.1f} "
              f"| {m(lambda r: r['broker_peak_rss_bytes']) / 1048576:.1f} |")
print(f"\n(raw results: {out})", file=sys.stderr)
PY
