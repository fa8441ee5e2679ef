#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds tce-init (tools/testing/tce-init), the /init of the test initramfs, as a static
# executable for the test VM's architecture:
#
#   scripts/build-init.sh x86_64|ppc64le
#
# x86_64 uses the rustup toolchain on PATH; ppc64le uses Debian's rustc with -Zbuild-std (the
# rustup toolchain has no rust-src). +crt-static and the ppc64le linker are set in
# tools/testing/tce-init/.cargo/config.toml, which is why cargo runs from that directory.
# The target directory is in the cache ($TCE_CACHE, default ~/.cache/tce-accel/target-init/),
# one per checkout.
# Idempotent; progress goes to stderr, the path of the binary to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

arch=${1:?usage: build-init.sh x86_64|ppc64le}
log() { printf '[build-init %s] %s\n' "$arch" "$*" >&2; }

CACHE=${TCE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tce-accel}
# One target directory per checkout (see scripts/build-vm-binary.sh).
tdir="$CACHE/target-init/$(printf %s "$PWD" | sha256sum | cut -c1-12)"
export PATH="$HOME/.cargo/bin:$PATH"

scripts/kernel-toolchain.sh

cd "$top/tools/testing/tce-init"
locked=()
[ -f Cargo.lock ] && locked=(--locked)

case "$arch" in
x86_64)
	triple=x86_64-unknown-linux-gnu
	if ! command -v cargo >/dev/null 2>&1; then
		log "no cargo on PATH: run scripts/setup.sh first"
		exit 1
	fi
	log "cargo build --release --target $triple ($(cargo --version))"
	cargo build --release "${locked[@]}" --target "$triple" --target-dir "$tdir" >&2
	;;
ppc64le)
	triple=powerpc64le-unknown-linux-gnu
	# The static link needs the cross glibc (libc6-dev-ppc64el-cross, from kernel-toolchain.sh).
	log "cargo build --release -Zbuild-std --target $triple ($(/usr/bin/cargo --version))"
	RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 /usr/bin/cargo build --release "${locked[@]}" \
		-Zbuild-std=std,panic_abort --target "$triple" --target-dir "$tdir" >&2
	;;
*)
	log "unknown architecture (want x86_64 or ppc64le)"
	exit 2
	;;
esac

bin="$tdir/$triple/release/tce-init"
desc=$(file -b "$bin")
case "$desc" in
*"statically linked"* | *"static-pie linked"*) ;;
*)
	log "not a static executable: $desc"
	exit 1
	;;
esac
log "static: ${desc%%, BuildID*}"
echo "$bin"
