#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The main job, for now: replays the sample trace on the simulated host with the real
# engine, then measures the engine's hot paths. (The run on the emulated POWER KVM host
# joins this when the module and the KVM hook land.)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

trace=samples/traces/ddw-huge-window.trace
echo "== [1/2] tce-sim: $trace (command, then what the engine answered)"
start=$(date +%s%N)
paste -d '\n' <(grep -v '^\s*\(#\|$\)' "$trace" | sed 's/^/> /') \
	<(target/release/tce-sim "$trace")
end=$(date +%s%N)
printf '   replayed %d commands in %d ms (process start included)\n' \
	"$(grep -cv '^\s*\(#\|$\)' "$trace")" $(((end - start) / 1000000))

echo "== [2/2] engine hot paths (criterion; takes a few minutes)"
scripts/bench.sh
