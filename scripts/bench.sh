#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Measures the TCE engine's hot paths with criterion (tools/tce-sim/benches/engine.rs), then
# prints the summary table the benchmark computed. The figures are also written as JSON to
# target/tce-bench.json, or to $TCE_BENCH_JSON if it is set. Extra arguments go to criterion,
# e.g. `scripts/bench.sh h_put_tce` to run only the matching benchmarks (the summary still
# times every path).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

log=target/tce-bench.log
mkdir -p target

echo "[bench] building the benchmark (release profile)"
cargo bench -p tce-sim --bench engine --no-run

echo "[bench] running criterion, then the summary timing (well under a minute); log: $log"
start=$(date +%s)
cargo bench -p tce-sim --bench engine -- "$@" 2>&1 | tee "$log"
end=$(date +%s)

echo
echo "[bench] finished in $((end - start)) s; summary:"
sed -n '/^tce-accel engine benchmark/,$p' "$log"
