#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Installs, idempotently, what building Rust-enabled kernels and booting them in QEMU needs:
# Debian's rustc-web/cargo-web/rust-web-src (Rust with its library source), clang/lld/llvm
# 22, the ppc64le cross binutils and gcc (the powerpc boot wrapper needs them), the kernel
# build tools, bindgen-cli from crates.io, and QEMU 10 from bookworm-backports.
set -euo pipefail

log() { printf '[kernel-toolchain] %s\n' "$*" >&2; }

pkgs=(rustc-web cargo-web rust-web-src rust-web-clippy clang-22 lld-22 llvm-22 libclang-22-dev
	gcc-powerpc64le-linux-gnu libc6-dev-ppc64el-cross flex bison bc libelf-dev libssl-dev cpio python3 file)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done

if [ ! -f /etc/apt/sources.list.d/tce-accel-bookworm-backports.sources ]; then
	log "adding bookworm-backports (for QEMU 10)"
	cat >/etc/apt/sources.list.d/tce-accel-bookworm-backports.sources <<'SRCS'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRCS
fi

need_qemu=
for q in qemu-system-ppc qemu-system-x86; do
	v=$(dpkg-query -W -f='${Version}' "$q" 2>/dev/null || true)
	case "$v" in *bpo12*) ;; *) need_qemu=1 ;; esac
done

if [ ${#missing[@]} -gt 0 ] || [ -n "$need_qemu" ]; then
	log "apt-get update"
	apt-get update -q >&2
	if [ ${#missing[@]} -gt 0 ]; then
		log "installing: ${missing[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
	fi
	if [ -n "$need_qemu" ]; then
		log "installing QEMU from bookworm-backports"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			-t bookworm-backports qemu-system-ppc qemu-system-x86 >&2
	fi
fi

export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v bindgen >/dev/null 2>&1; then
	log "installing bindgen-cli (cargo install --locked)"
	RUSTC=/usr/bin/rustc cargo install --locked -q bindgen-cli >&2 ||
		cargo install --locked -q bindgen-cli >&2
fi
log "rustc $(/usr/bin/rustc --version | cut -d' ' -f2), $(clang-22 --version | head -n1), $(qemu-system-ppc64 --version | head -n1), $(bindgen --version)"
