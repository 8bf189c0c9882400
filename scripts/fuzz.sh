#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 600), one
# after the other (libFuzzer uses one core per run). Needs a nightly
# toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Findings land in
# fuzz/artifacts/<target>/; the corpus grows in fuzz/corpus/<target>/ (only
# the seed-* files there are committed).
#
# Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail

seconds="${1:-600}"
cd "$(dirname "$0")/.."

targets=$(cargo +nightly fuzz list)
for target in $targets; do
    echo "== $target: ${seconds}s"
    cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" -print_final_stats=1
done
