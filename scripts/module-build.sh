#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds tce_accel.ko against a cached test kernel (scripts/kernel-build.sh NAME), with its
# objects in the cache (MO=), so that builds for several kernels do not mix:
#
#   scripts/module-build.sh x86_64|ppc64le|x86_64-kasan|ppc64le-debug [extra make arguments, e.g. CLIPPY=1]
#
# Prints the path of the module.
set -euo pipefail
cd "$(dirname "$0")/.."

name=${1:?usage: module-build.sh x86_64|ppc64le|x86_64-kasan|ppc64le-debug [make args]}
shift
case "$name" in
x86_64 | x86_64-kasan) arch=x86_64 cross= ;;
ppc64le | ppc64le-debug) arch=powerpc cross=powerpc64le-linux-gnu- ;;
*) echo "module-build.sh: unknown kernel '$name'" >&2; exit 2 ;;
esac

CACHE=${TCE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tce-accel}
build="$CACHE/build-$name"
out="$CACHE/module-$name"
[ -f "$build/Module.symvers" ] || { echo "module-build.sh: no kernel built in $build" >&2; exit 1; }
mkdir -p "$out"
export PATH="$HOME/.cargo/bin:$PATH"
export LIBCLANG_PATH=/usr/lib/llvm-22/lib

args=(-C "$build" M="$PWD" MO="$out" ARCH="$arch" LLVM=-22 RUSTC=/usr/bin/rustc
	CLIPPY_DRIVER=/usr/bin/clippy-driver
	BINDGEN="$HOME/.cargo/bin/bindgen" -j"$(nproc)")
[ -n "$cross" ] && args+=(CROSS_COMPILE="$cross")
printf '[module-build %s] make modules %s\n' "$name" "$*" >&2
make "${args[@]}" "$@" modules >&2
echo "$out/tce_accel.ko"
