#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds a Rust-enabled test kernel in the cache, reusing an earlier build:
#
#   scripts/kernel-build.sh x86_64|ppc64le|x86_64-kasan|ppc64le-debug
#
# The source is Debian's linux-source-7.3 (scripts/kernel-source.sh) with the project's
# patches/ applied; the configuration is scripts/kconfig/common.config plus the
# architecture's fragment, checked by kunit.py (which fails if an option did not stick).
# make rebuilds only what changed. The full log is in the build directory; progress is
# printed every 60 seconds. Prints the build directory on success.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

name=${1:?usage: kernel-build.sh x86_64|ppc64le|x86_64-kasan|ppc64le-debug}
case "$name" in
x86_64) arch=x86_64 karch=x86_64 frags="x86_64" image=bzImage cross= ;;
x86_64-kasan) arch=x86_64 karch=x86_64 frags="x86_64 kasan" image=bzImage cross= ;;
ppc64le) arch=powerpc karch=powerpcle frags="ppc64le vfio" image=vmlinux cross=powerpc64le-linux-gnu- ;;
ppc64le-debug) arch=powerpc karch=powerpcle frags="ppc64le vfio debug" image=vmlinux cross=powerpc64le-linux-gnu- ;;
*) echo "kernel-build.sh: unknown kernel '$name'" >&2; exit 2 ;;
esac

log() { printf '[kernel-build %s] %s\n' "$name" "$*" >&2; }

CACHE=${TCE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tce-accel}
export PATH="$HOME/.cargo/bin:$PATH"
export LIBCLANG_PATH=/usr/lib/llvm-22/lib

scripts/kernel-toolchain.sh

# The patched source. The applied patches are kept in the tree; when the set changes they are
# reversed and the new set applied, so that make rebuilds only the files they touch.
src=$(scripts/kernel-source.sh)
applied="$src/.tce-patches.d"
if ! diff -rq patches "$applied" >/dev/null 2>&1; then
	if [ -d "$applied" ]; then
		for p in $(ls "$applied"/*.patch 2>/dev/null | sort -r); do
			log "reversing $(basename "$p")"
			patch -d "$src" -p1 -R --quiet <"$p"
		done
		rm -rf "$applied"
	fi
	mkdir -p "$applied.new"
	for p in patches/*.patch; do
		log "applying $(basename "$p")"
		patch -d "$src" -p1 --forward --quiet <"$p"
		cp "$p" "$applied.new/"
	done
	mv "$applied.new" "$applied"
fi

build="$CACHE/build-$name"
mkdir -p "$build"
kcfg="$build/tce.kunitconfig"
cat scripts/kconfig/common.config >"$kcfg.new"
for f in $frags; do cat "scripts/kconfig/$f.config" >>"$kcfg.new"; done
mv "$kcfg.new" "$kcfg"

makeopts=(LLVM=-22 RUSTC=/usr/bin/rustc BINDGEN="$HOME/.cargo/bin/bindgen")
kunit_opts=(--arch="$karch" --build_dir="$build" --kunitconfig="$kcfg")
for o in "${makeopts[@]}"; do kunit_opts+=(--make_options "$o"); done
[ -n "$cross" ] && kunit_opts+=(--cross_compile="$cross")

log "configuring ($frags)"
(cd "$src" && python3 tools/testing/kunit/kunit.py config "${kunit_opts[@]}" >"$build/config.log" 2>&1) || {
	cat "$build/config.log" >&2
	exit 1
}

margs=(-C "$src" O="$build" ARCH="$arch" "${makeopts[@]}" -j"$(nproc)")
[ -n "$cross" ] && margs+=(CROSS_COMPILE="$cross")
if ! make "${margs[@]}" rustavailable >"$build/rustavailable.log" 2>&1; then
	cat "$build/rustavailable.log" >&2
	exit 1
fi

log "building $image and modules (log: $build/build.log)"
start=$(date +%s)
make "${margs[@]}" "$image" modules >"$build/build.log" 2>&1 &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
	sleep 60 &
	wait $! || true
	kill -0 "$pid" 2>/dev/null || break
	last=$(grep -E '^\s+(CC|RUSTC|LD|AR|AS)' "$build/build.log" | tail -n1 | sed 's/^\s*//')
	log "$(( $(date +%s) - start ))s: $(grep -cE '^\s+(CC|RUSTC)' "$build/build.log") objects so far, last: $last"
done
if ! wait "$pid"; then
	grep -E 'error|Error' "$build/build.log" | head -n 40 >&2
	log "build failed after $(( $(date +%s) - start ))s; full log: $build/build.log"
	exit 1
fi
log "done in $(( $(date +%s) - start ))s"
echo "$build"
