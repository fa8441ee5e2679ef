#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The main job, for now: replays the sample trace on the simulated host with the real
# engine, measures the engine's hot paths, then boots the emulated POWER KVM host (QEMU
# pseries, POWER9, nested KVM-HV) with tce_accel.ko and prints what the DDW shim measured
# there on the real module. (The guest's hypercalls join this when the KVM hook lands.)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

trace=samples/traces/ddw-huge-window.trace
echo "== [1/3] tce-sim: $trace (command, then what the engine answered)"
start=$(date +%s%N)
paste -d '\n' <(grep -v '^\s*\(#\|$\)' "$trace" | sed 's/^/> /') \
	<(target/release/tce-sim "$trace")
end=$(date +%s%N)
printf '   replayed %d commands in %d ms (process start included)\n' \
	"$(grep -cv '^\s*\(#\|$\)' "$trace")" $(((end - start) / 1000000))

echo "== [2/3] engine hot paths (criterion; takes a few minutes)"
scripts/bench.sh

echo "== [3/3] the emulated POWER host: tce_accel.ko under QEMU pseries (builds the kernel once)"
build=$(scripts/kernel-build.sh ppc64le)
ko=$(scripts/module-build.sh ppc64le)
init=$(scripts/build-init.sh ppc64le)
shim=$(scripts/build-vm-binary.sh ppc64le shim-tests)
ddw=$(scripts/build-vm-binary.sh ppc64le tce-ddw)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
TCE_EXPECT_SUITES="tce_accel_engine tce_accel_table tce_accel_user" TCE_INIT="$init" \
	TCE_SHIM_TESTS="$shim" TCE_DDW="$ddw" scripts/qemu-test.sh ppc64le "$build" "$ko" \
	>"$out" 2>&1 || status=$?
grep -E '^\[qemu-test' "$out" || cat "$out"
echo "   measured by tce-ddw bench inside the emulated POWER host, on the real module:"
sed -n 's/^\[[^]]*\] *# ddw_bench: /   /p' "$build/tce-test-ppc64le.log"
exit "$status"
