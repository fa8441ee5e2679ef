#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds, idempotently, the QEMU TCG plugin tools/qemu-plugin/tce_cost.c, which counts the
# instructions, cache lines and pages the emulated POWER host spends on each TCE hypercall of
# its guest (see the plugin's header). The plugin API header, qemu-plugin.h, comes from the
# Debian source package of the QEMU that runs the emulated host (its orig tarball, fetched with
# a private apt configuration that leaves the system's alone, and cached); glib's headers come
# from libglib2.0-dev. Prints the path of the plugin.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[qemu-plugin] %s\n' "$*" >&2; }

CACHE=${TCE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tce-accel}
dir="$CACHE/qemu-plugin"
src=tools/qemu-plugin/tce_cost.c
so="$dir/tce_cost.so"
mkdir -p "$dir"

if ! dpkg -s libglib2.0-dev >/dev/null 2>&1; then
	log "installing libglib2.0-dev"
	sudo_=""
	[ "$(id -u)" = 0 ] || sudo_=sudo
	$sudo_ apt-get install -y -q libglib2.0-dev >"$dir/apt.log" 2>&1 ||
		{ cat "$dir/apt.log" >&2; exit 1; }
fi

# The header of the QEMU that runs the emulated host.
version=$(dpkg-query -W -f '${Version}' qemu-system-ppc)
upstream=${version#*:}
upstream=${upstream%%-*}
header="$dir/qemu-$upstream/qemu-plugin.h"
if [ ! -f "$header" ]; then
	log "fetching QEMU $upstream's source (Debian's orig tarball, for qemu-plugin.h)"
	apt_dir="$dir/apt"
	mkdir -p "$apt_dir/etc" "$apt_dir/state/lists/partial" "$apt_dir/cache/archives/partial"
	: >"$apt_dir/state/status"
	cat >"$apt_dir/etc/sources.list" <<'SRC'
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
SRC
	apt=(apt-get -q
		-o "Dir::Etc::sourcelist=$apt_dir/etc/sources.list" -o Dir::Etc::sourceparts=/dev/null
		-o "Dir::State=$apt_dir/state" -o "Dir::State::status=$apt_dir/state/status"
		-o "Dir::Cache=$apt_dir/cache" -o Dir::Etc::preferences=/dev/null
		-o Dir::Etc::preferencesparts=/dev/null -o Debug::NoLocking=1)
	"${apt[@]}" update >"$apt_dir/update.log" 2>&1 || { cat "$apt_dir/update.log" >&2; exit 1; }
	# Only the orig tarball is needed; the Debian part may be missing on a mirror.
	(cd "$dir" && "${apt[@]}" source --download-only "qemu=$version" >"$apt_dir/source.log" 2>&1) || true
	tarball="$dir/qemu_$upstream.orig.tar.xz"
	[ -f "$tarball" ] || { cat "$apt_dir/source.log" >&2; log "no $tarball"; exit 1; }
	mkdir -p "$dir/qemu-$upstream"
	tar -xJf "$tarball" -O "qemu-${upstream%+ds}/include/qemu/qemu-plugin.h" >"$header.tmp"
	mv "$header.tmp" "$header"
	rm -f "$tarball" "$dir"/qemu_*.dsc "$dir"/qemu_*.debian.tar.*
fi

if [ ! -f "$so" ] || [ "$src" -nt "$so" ] || [ "$header" -nt "$so" ]; then
	log "building $so"
	# shellcheck disable=SC2046
	gcc -O2 -Wall -Werror -shared -fPIC -I"$(dirname "$header")" \
		$(pkg-config --cflags glib-2.0) -o "$so.tmp" "$src"
	mv "$so.tmp" "$so"
fi
echo "$so"
