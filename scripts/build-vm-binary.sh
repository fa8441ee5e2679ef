#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds a program of the workspace as a static executable for a test VM, where tce-init runs
# it against the real module:
#
#   scripts/build-vm-binary.sh x86_64|ppc64le shim-tests|tce-ddw|tce-vmm|tce-vmm-test
#
# shim-tests is the tce_shim kernel-backend test binary (rust/tce_shim/tests/kernel.rs);
# tce-ddw is the DDW command-line tool, whose benchmark then measures the real module;
# tce-vmm is the sample VMM (samples/tce_vmm), whose guest drives the TCE hypercalls on the
# three paths; tce-vmm-test is its tests (tools/testing/tce-vmm-test), built on it. Only their
# ppc64le builds have a guest payload, assembled by the sample's build.rs with
# powerpc64le-linux-gnu-as (scripts/kernel-toolchain.sh installs it).
#
# ppc64le uses Debian's rustc with -Zbuild-std, as scripts/build-init.sh does. The target
# directory is in the cache. Prints the path of the binary.
set -euo pipefail
cd "$(dirname "$0")/.."

usage="usage: build-vm-binary.sh x86_64|ppc64le shim-tests|tce-ddw|tce-vmm|tce-vmm-test"
arch=${1:?$usage}
what=${2:?$usage}
log() { printf '[build-vm-binary %s %s] %s\n' "$arch" "$what" "$*" >&2; }
CACHE=${TCE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tce-accel}
# One target directory per checkout: cargo keys the units of workspace members by their path
# relative to the workspace, so two checkouts sharing a directory would take each other's
# binaries for fresh (a clean CI clone would run the working tree's build).
tdir="$CACHE/target-vm/$(printf %s "$PWD" | sha256sum | cut -c1-12)"
export PATH="$HOME/.cargo/bin:$PATH"

case "$what" in
shim-tests)
	args=(test --release --locked -p tce_shim --test kernel --no-run)
	name=kernel
	;;
tce-ddw)
	args=(build --release --locked -p tce-ddw --bin tce-ddw)
	name=tce-ddw
	;;
tce-vmm)
	args=(build --release --locked -p tce-vmm --bin tce-vmm)
	name=tce-vmm
	;;
tce-vmm-test)
	args=(build --release --locked -p tce-vmm-test --bin tce-vmm-test)
	name=tce-vmm-test
	;;
*) log "unknown program (want shim-tests, tce-ddw, tce-vmm or tce-vmm-test)"; exit 2 ;;
esac
args+=(--message-format=json --target-dir "$tdir")
case "$arch" in
x86_64)
	triple=x86_64-unknown-linux-gnu
	cargo=(cargo)
	;;
ppc64le)
	triple=powerpc64le-unknown-linux-gnu
	cargo=(env RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1
		CARGO_TARGET_POWERPC64LE_UNKNOWN_LINUX_GNU_LINKER=powerpc64le-linux-gnu-gcc /usr/bin/cargo)
	args+=(-Zbuild-std=std,panic_abort,test)
	;;
*) log "unknown architecture (want x86_64 or ppc64le)"; exit 2 ;;
esac
log "building for $triple"
json=$(RUSTFLAGS="-C target-feature=+crt-static" "${cargo[@]}" "${args[@]}" --target "$triple")
bin=$(printf '%s\n' "$json" | python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == sys.argv[1]:
        print(m["executable"])
' "$name")
[ -n "$bin" ] || { log "no $name binary was produced"; exit 1; }
case "$(file -b "$bin")" in
*"statically linked"* | *"static-pie linked"*) ;;
*) log "not a static executable: $(file -b "$bin")"; exit 1 ;;
esac
echo "$bin"
