#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs the user-space suite (cargo test over the workspace and over tce-init, release mode)
# and ends with one summary line over every test binary: "tests: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --locked --workspace --release 2>&1 | tee "$log" || status=$?
# tce-init is a workspace of its own (it is built statically for the test VMs); its unit
# tests run on the host.
(cd tools/testing/tce-init && cargo test --locked --release) 2>&1 | tee -a "$log" || status=$?
read -r passed failed < <(awk '/^test result:/ {
	for (i = 1; i <= NF; i++) {
		if ($(i + 1) ~ /^passed;/) p += $i
		if ($(i + 1) ~ /^failed;/) f += $i
	}
} END { print p + 0, f + 0 }' "$log")
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
	# A build failure or a crashed test binary: count it as a failure.
	failed=1
fi
echo "tests: $passed passed, $failed failed"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
