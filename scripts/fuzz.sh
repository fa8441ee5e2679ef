#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Runs the differential fuzz target (fuzz/fuzz_targets/differential.rs) for SECONDS seconds
# (default 60): libFuzzer's inputs become command sequences that run on the real TCE engine and
# on the reference model of rust/tce_model/src/model.rs, which must agree on every result.
#
# Usage: scripts/fuzz.sh [SECONDS] [libFuzzer options...]
#
# - cargo-fuzz is installed with `cargo install --locked cargo-fuzz` if it is missing; the fuzz
#   crate's dependencies come from crates.io. Nothing else is needed.
# - cargo-fuzz passes nightly-only flags (-Z...) to rustc; the script sets RUSTC_BOOTSTRAP=1 so
#   that the stable toolchain accepts them.
# - AddressSanitizer is the default: rustup's stable toolchains ship its runtime, and it works
#   there. If the build with it fails (a toolchain without the sanitizer runtime), the script
#   falls back to `--sanitizer none`, which still finds every mismatch and panic, only no
#   memory errors. FUZZ_SANITIZER=address or FUZZ_SANITIZER=none forces one.
# - Progress: libFuzzer's status lines (without those for each new corpus input or newly
#   covered function) and, every 10 seconds, the elapsed time and the corpus size.
#
# The corpus grows in fuzz/corpus/differential. On a mismatch or panic the input is saved in
# fuzz/artifacts/differential/, the panic message holds a tce-sim trace that reproduces it, and
# the script exits with status 1; `cargo fuzz run differential <artifact>` replays it.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[fuzz] %s\n' "$*" >&2; }

seconds=${1:-60}
if [ $# -gt 0 ]; then
	shift
fi
case $seconds in
'' | *[!0-9]*)
	echo "usage: $0 [SECONDS] [libFuzzer options...]" >&2
	exit 2
	;;
esac

export PATH="$HOME/.cargo/bin:$PATH"
export RUSTC_BOOTSTRAP=1
target=differential

if ! cargo fuzz --version >/dev/null 2>&1; then
	log "installing cargo-fuzz (cargo install --locked cargo-fuzz)"
	cargo install --locked cargo-fuzz
fi
log "$(cargo fuzz --version), $(rustc --version)"

mkdir -p target
buildlog=target/fuzz-build.log
sanitizer=${FUZZ_SANITIZER:-}
if [ -z "$sanitizer" ]; then
	log "building $target with AddressSanitizer (log: $buildlog)"
	if cargo fuzz build --sanitizer address "$target" >"$buildlog" 2>&1; then
		sanitizer=address
	else
		tail -n 5 "$buildlog" >&2
		log "the build with AddressSanitizer failed: falling back to --sanitizer none"
		sanitizer=none
	fi
fi
log "building $target (--sanitizer $sanitizer)"
cargo fuzz build --sanitizer "$sanitizer" "$target"

corpus=fuzz/corpus/$target
mkdir -p "$corpus"
log "fuzzing for $seconds s (corpus: $corpus, $(find "$corpus" -type f | wc -l) inputs)"

# The ticker is this script's own child, ended by its PID.
(
	elapsed=0
	while sleep 10; do
		elapsed=$((elapsed + 10))
		log "$elapsed/$seconds s, corpus $(find "$corpus" -type f | wc -l) inputs"
	done
) &
ticker=$!
trap 'kill "$ticker" 2>/dev/null || true' EXIT

status=0
cargo fuzz run --sanitizer "$sanitizer" "$target" -- \
	-max_total_time="$seconds" -timeout=60 -print_final_stats=1 "$@" 2>&1 |
	sed -u -E \
		-e '/^#[0-9]+[[:space:]]+(NEW|REDUCE)/d' \
		-e '/^[[:space:]]+NEW_FUNC/d' \
		-e '/^###### Recommended dictionary/,/^###### End of recommended dictionary/d' ||
	status=$?

if [ "$status" -ne 0 ]; then
	log "FAILED: the fuzzer found an input on which the engine and the model disagree or panic"
	log "inputs: $(ls fuzz/artifacts/$target 2>/dev/null | tr '\n' ' ')"
	log "replay one with: RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer $sanitizer $target fuzz/artifacts/$target/<file>"
	exit 1
fi
log "done: no mismatch in $seconds s"
