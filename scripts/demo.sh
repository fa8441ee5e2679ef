#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The main job. Boots the emulated POWER KVM host (QEMU pseries, POWER9, TCG, nested KVM-HV)
# with the test kernel (patches/ applied, built once into the cache) and tce_accel.ko; there
# the sample VMM (samples/tce_vmm) runs a POWER guest whose TCE hypercalls go three ways: to
# tce_accel, to KVM's stock C tables, and to the VMM. It prints the per-call latency table with
# the three paths side by side and writes Documentation/tce-latency.json and .svg, and what the
# VFIO check measured (an emulated PCI device's hardware table, accel against the C path). Then
# Debian's unmodified QEMU runs a real Linux guest there, on tce_accel and on KVM's C path in one
# boot (scripts/real-guest.sh), and the two are printed side by side. Last it replays a trace on
# the simulated host and measures the engine's hot paths on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

echo "== [1/4] the fast path live on the emulated POWER host (first run builds the ppc64le kernel: ~10 min)"
build=$(scripts/kernel-build.sh ppc64le)
echo "   building tce_accel.ko (log: $build/module-build.log)"
# Built as make check builds it (CLIPPY=1), so that the counts below compare with its runs.
ko=$(scripts/module-build.sh ppc64le CLIPPY=1 2>"$build/module-build.log") ||
	{ cat "$build/module-build.log" >&2; exit 1; }
init=$(scripts/build-init.sh ppc64le)
shim=$(scripts/build-vm-binary.sh ppc64le shim-tests)
ddw=$(scripts/build-vm-binary.sh ppc64le tce-ddw)
vmm=$(scripts/build-vm-binary.sh ppc64le tce-vmm)
vmm_test=$(scripts/build-vm-binary.sh ppc64le tce-vmm-test)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
echo "   booting; the guest makes 10,000 calls of each hypercall on each path (a few minutes)"
TCE_EXPECT_SUITES="tce_accel_engine tce_accel_table tce_accel_user" TCE_INIT="$init" \
	TCE_SHIM_TESTS="$shim" TCE_DDW="$ddw" TCE_VMM="$vmm" TCE_VMM_TEST="$vmm_test" \
	scripts/qemu-test.sh ppc64le "$build" "$ko" >"$out" 2>&1 || status=$?
grep -E '^\[qemu-test' "$out" || cat "$out"
log="$build/tce-test-ppc64le.log"
echo "   the guest's end-to-end check:"
sed -n 's/^\[[^]]*\] *# guest_e2e: /   /p' "$log" | grep -E 'tce-vmm-test check: |hammer: window' || true
echo "   a window with a VFIO device (QEMU's virtio-rng-pci bound to vfio-pci; tce-vmm-test vfio):"
sed -n 's/^\[[^]]*\] *# vfio_attach: tce-vmm-test: vfio: /   /p' "$log" |
	grep -E 'not preregistered|hardware entries mapped|hardware pages:|bench:|median: accel|left mapped|unregistered:' || true
sed -n 's/^\[[^]]*\] *# vfio_attach: \(tce-vmm-test vfio: \)/   \1/p' "$log"
echo "   window creation through the DDW shim on the real module (tce-ddw bench):"
sed -n 's/^\[[^]]*\] *# ddw_bench: /   /p' "$log"
timing="$build/tce-vmm-bench-timing.json"
cp "$build/tce-vmm-bench-ppc64le.json" "$timing" 2>/dev/null || status=1
[ "$status" = 0 ] || { echo "demo: the emulated POWER host run failed (log: $log)" >&2; exit "$status"; }
# The same benchmark once more, with the tce_cost QEMU plugin counting what the emulated host
# executes per call: deterministic, but the instrumentation slows the emulator, so its timings
# are not used. Only guest_bench runs in that boot (tce.only).
echo "   counting instructions per call: the benchmark again under the tce_cost QEMU plugin (~2 min)"
so=$(scripts/qemu-plugin-build.sh)
cost="$build/tce-cost.txt" profile="$build/tce-cost-profile.txt"
rm -f "$cost" "$profile"
TCE_QEMU_EXTRA="-plugin $so,out=$cost,profile=$profile" TCE_TIMEOUT=1200 TCE_APPEND="tce.only=guest_bench" \
	TCE_EXPECT_SUITES="tce_accel_engine tce_accel_table tce_accel_user" TCE_INIT="$init" \
	TCE_SHIM_TESTS="$shim" TCE_DDW="$ddw" TCE_VMM="$vmm" TCE_VMM_TEST="$vmm_test" \
	scripts/qemu-test.sh ppc64le "$build" "$ko" >"$out" 2>&1 || { grep -E '^\[qemu-test' "$out"; echo "demo: the plugin run failed" >&2; exit 1; }
echo
target/release/tce-latency "$timing" --cost "$cost" --json Documentation/tce-latency.json \
	--svg Documentation/tce-latency.svg | sed 's/^/   /' || status=1
# Where the instructions of tce_accel and of KVM's C path differ, function by function.
liobn() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["liobns"][sys.argv[2]])' "$timing" "$1"; }
echo
echo "   where the counts differ, by function (tce_accel against KVM's C path; $profile):"
scripts/cost-profile.sh "$profile" "$build/tce-test-ppc64le.log" "$build/System.map" "$ko" \
	--top 8 --compare "$(liobn accel)" "$(liobn kvm)" | sed 's/^/   /' || status=1
[ "$status" = 0 ] || { echo "demo: the latency report failed" >&2; exit "$status"; }

echo "== [2/4] a real Linux guest under Debian's unmodified QEMU, on tce_accel and on KVM's C path"
echo "   (ibmvscsi and virtio-blk with a DDW; one boot, takeover=1 then takeover=0; ~2 min)"
scripts/real-guest.sh ppc64le "$ko" 2>&1 | grep -vE '^\[..:..:..\]' | sed 's/^/   /' ||
	{ echo "demo: the real-guest run failed (log: $build/real-guest.log)" >&2; exit 1; }

trace=samples/traces/ddw-huge-window.trace
echo "== [3/4] tce-sim: $trace (command, then what the engine answered)"
start=$(date +%s%N)
paste -d '\n' <(grep -v '^\s*\(#\|$\)' "$trace" | sed 's/^/> /') \
	<(target/release/tce-sim "$trace")
end=$(date +%s%N)
printf '   replayed %d commands in %d ms (process start included)\n' \
	"$(grep -cv '^\s*\(#\|$\)' "$trace")" $(((end - start) / 1000000))

echo "== [4/4] engine hot paths on this machine (criterion; takes a few minutes)"
scripts/bench.sh

