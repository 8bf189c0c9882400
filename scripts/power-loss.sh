#!/usr/bin/env bash
# The server's power-loss test (crates/herald-server/tests/power_loss.rs) at
# length: CUTS random power cuts (default 1000) under a pipelining publisher
# and an acking durable subscriber, EVENTS events per run (default 64),
# each cut followed by recovery and the durability checks. CI runs 100 cuts
# of 24 events. Prints the seed; set HERALD_TEST_SEED to replay a failure.
#
# Usage: scripts/power-loss.sh [CUTS] [EVENTS]
set -euo pipefail

cd "$(dirname "$0")/.."
export HERALD_POWER_LOSS_CUTS="${1:-1000}"
export HERALD_POWER_LOSS_EVENTS="${2:-64}"
exec cargo test --release -p herald-server --test power_loss -- --nocapture
