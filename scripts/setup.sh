#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Installs what the user-space suite needs, idempotently: a Rust toolchain with cargo,
# rustfmt and clippy, and the crates of the workspace (fetched once from crates.io).
# Later stages (kernels, QEMU) have their own scripts.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }

export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v cargo >/dev/null 2>&1; then
	log "no cargo on PATH: installing Debian's Rust toolchain"
	apt-get update -q >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q cargo rustc >&2
fi
for comp in rustfmt clippy; do
	if ! cargo "${comp/rustfmt/fmt}" --version >/dev/null 2>&1; then
		if command -v rustup >/dev/null 2>&1; then
			log "adding $comp with rustup"
			rustup component add "$comp" >&2
		else
			log "installing $comp from Debian"
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q "rust-$comp" >&2 || true
		fi
	fi
done
log "$(cargo --version)"
log "fetching crates"
cargo fetch --locked -q
log "ready"
