#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Fetch and unpack Debian's linux-source-7.3 into the cache directory (idempotent).
#
# The source comes from trixie-backports, pinned at priority 50 so that nothing
# else on the machine is upgraded from it. Prints the path of the tree.
set -euo pipefail

CACHE=${TCE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tce-accel}
KVER=7.3
SRC="$CACHE/linux-$KVER"

log() { printf '[kernel-source] %s\n' "$*" >&2; }

if [ -f "$SRC/.unpacked" ]; then
	echo "$SRC"
	exit 0
fi

mkdir -p "$CACHE"
if [ ! -f /etc/apt/sources.list.d/tce-accel-trixie-backports.sources ]; then
	log "adding trixie-backports (pinned at priority 50)"
	cat >/etc/apt/sources.list.d/tce-accel-trixie-backports.sources <<'SRCS'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRCS
	cat >/etc/apt/preferences.d/tce-accel-trixie-backports <<'PIN'
Package: *
Pin: release n=trixie-backports
Pin-Priority: 50
PIN
	apt-get update -q >&2
fi

deb=$(ls "$CACHE"/linux-source-${KVER}_*.deb 2>/dev/null | head -n1 || true)
if [ -z "$deb" ]; then
	log "downloading linux-source-$KVER"
	(cd "$CACHE" && apt-get download -q "linux-source-$KVER" >&2)
	deb=$(ls "$CACHE"/linux-source-${KVER}_*.deb | head -n1)
fi

log "unpacking $(basename "$deb")"
tmp=$(mktemp -d "$CACHE/unpack.XXXXXX")
dpkg -x "$deb" "$tmp"
tarball=$(ls "$tmp"/usr/src/linux-source-$KVER.tar.* | head -n1)
rm -rf "$SRC"
mkdir -p "$SRC"
tar -xf "$tarball" -C "$SRC" --strip-components=1
rm -rf "$tmp"
touch "$SRC/.unpacked"
log "source ready in $SRC"
echo "$SRC"
