#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The kernel half of `make check`: for each test kernel, build it (cached), build tce_accel.ko
# against it with clippy, build the test init, boot QEMU (TCG) with an initramfs that loads the
# module and runs the user-space tests (tce-init's own, the tce_shim library's kernel-backend
# tests and, on ppc64le, the sample VMM's end-to-end guest run and benchmark, and the module
# unloaded and loaded again while a guest's hypercalls go through KVM), and check the KTAP
# of every suite with kunit.py parse. On ppc64le, scripts/real-guest.sh then runs a real Linux
# guest under Debian's QEMU on the module and on KVM's C path.
#
# ppc64le-debug is the hostile run: the ppc64le tests on a kernel with sleep-in-atomic checks,
# kmemleak, SLUB debugging (slub_debug=FZPU: poisoning and red zones on every cache) and list
# debugging (scripts/kconfig/debug.config), without the benchmark (tce.bench=0). tce-init's
# kmemleak test scans for leaks after the module is unloaded.
#
#   scripts/kernel-check.sh [x86_64] [ppc64le] [ppc64le-debug] [x86_64-kasan]
#                                                           (default: all four, in this order)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[kernel-check] %s\n' "$*" >&2; }

kernels=("$@")
[ ${#kernels[@]} -gt 0 ] || kernels=(x86_64 ppc64le ppc64le-debug x86_64-kasan)

# The module's KUnit suites and the user-space suite; each must report, and pass.
export TCE_EXPECT_SUITES="tce_accel_engine tce_accel_table tce_accel_user"

start=$(date +%s)
passed=0
times=()
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for k in "${kernels[@]}"; do
	kstart=$(date +%s)
	case "$k" in
	x86_64 | x86_64-kasan) arch=x86_64 ;;
	ppc64le | ppc64le-debug) arch=ppc64le ;;
	*)
		echo "kernel-check.sh: unknown kernel '$k'" >&2
		echo "usage: kernel-check.sh [x86_64] [ppc64le] [ppc64le-debug] [x86_64-kasan]" >&2
		exit 2
		;;
	esac
	log "== $k: kernel"
	build=$(scripts/kernel-build.sh "$k")
	log "== $k: module (with clippy)"
	ko=$(scripts/module-build.sh "$k" CLIPPY=1 2> >(tee "$tmp/module.log" >&2))
	# The module must build without a warning; the only ones allowed come from the
	# kernel's own -Ctarget-feature flags on powerpc, which rustc calls unstable.
	if grep -E '^(warning|error)' "$tmp/module.log" |
		grep -vE 'target-feature|^warning: [0-9]+ warnings? emitted' | grep -q .; then
		log "FAIL: the module does not build cleanly for $k"
		exit 1
	fi
	log "== $k: test init and the tce_shim kernel-backend tests"
	init=$(scripts/build-init.sh "$arch")
	shim=$(scripts/build-vm-binary.sh "$arch" shim-tests)
	ddw=$(scripts/build-vm-binary.sh "$arch" tce-ddw)
	# The sample VMM and its tests need KVM-HV, which only the emulated POWER host offers.
	vmm= vmm_test=
	if [ "$arch" = ppc64le ]; then
		vmm=$(scripts/build-vm-binary.sh "$arch" tce-vmm)
		vmm_test=$(scripts/build-vm-binary.sh "$arch" tce-vmm-test)
	fi
	log "== $k: boot and test"
	extra=()
	[ "$k" = x86_64-kasan ] && extra=(--kasan)
	# The debug kernel: SLUB poisoning and red zones on every cache, and no benchmark.
	append=${TCE_APPEND:-}
	[ "$k" = ppc64le-debug ] && append+=" slub_debug=FZPU panic_on_warn=1 tce.bench=0 tce.churn=20000"
	TCE_INIT="$init" TCE_SHIM_TESTS="$shim" TCE_DDW="$ddw" TCE_VMM="$vmm" TCE_VMM_TEST="$vmm_test" \
		TCE_APPEND="$append" \
		scripts/qemu-test.sh "$arch" "$build" "$ko" "${extra[@]}" \
		2> >(tee "$tmp/qemu.log" >&2)
	n=$(sed -n 's/.*Testing complete\. Ran \([0-9]\+\) tests: passed: \([0-9]\+\).*/\2/p' "$tmp/qemu.log" | tail -n1)
	passed=$((passed + ${n:-0}))
	# The tce_cost plugin of `make demo` builds, and QEMU loads it (its counts are demo's).
	if [ "$k" = ppc64le ]; then
		log "== $k: the tce_cost QEMU plugin builds and loads"
		so=$(scripts/qemu-plugin-build.sh)
		echo quit | qemu-system-ppc64 -M none -display none -monitor stdio \
			-plugin "$so,out=$tmp/cost.txt" >"$tmp/plugin.log" 2>&1 ||
			{ cat "$tmp/plugin.log" >&2; log "FAIL: QEMU cannot load $so"; exit 1; }
	fi
	# The real client: Debian's QEMU and a real Linux guest, on the module and on KVM's C path.
	if [ "$arch" = ppc64le ]; then
		log "== $k: a real guest under Debian's QEMU (scripts/real-guest.sh)"
		scripts/real-guest.sh "$k" "$ko" 2> >(tee "$tmp/real.log" >&2)
		n=$(sed -n 's/.*Testing complete\. Ran \([0-9]\+\) tests: passed: \([0-9]\+\).*/\2/p' "$tmp/real.log" | tail -n1)
		passed=$((passed + ${n:-0}))
	fi
	times+=("$k $(($(date +%s) - kstart))s")
done
printf -v t '%s, ' "${times[@]}"
log "time per kernel (kernel, module, boot and test): ${t%, }"
log "all kernels passed in $(($(date +%s) - start))s"
echo "kernel tests: $passed passed, 0 failed"
