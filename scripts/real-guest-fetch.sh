#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Fetches, idempotently, what the real-guest run (scripts/real-guest.sh) puts into the emulated
# POWER host, all from Debian's ppc64el archive: Debian's own QEMU (qemu-system-ppc 10 from
# bookworm-backports, the same version as the emulated host's) with its library closure, a
# Debian 6.1 pseries kernel and its modules for the real guest, and busybox-static for both
# userlands. apt runs with a private configuration in the cache: the system's apt state and
# sources are left alone. Prints the directory the packages are unpacked in.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[real-guest-fetch] %s\n' "$*" >&2; }

CACHE=${TCE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tce-accel}
dir="$CACHE/ppc64el"
root="$dir/root"
# Bump when the package list changes, so that an older unpacked tree is replaced.
stamp="$dir/.done-2"
if [ -f "$stamp" ]; then
	echo "$root"
	exit 0
fi

mkdir -p "$dir/etc" "$dir/state/lists/partial" "$dir/cache/archives/partial" "$dir/debs"
: >"$dir/state/status"
cat >"$dir/etc/sources.list" <<'SRC'
deb [arch=ppc64el signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [arch=ppc64el signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-updates main
deb [arch=ppc64el signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
deb [arch=ppc64el signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main
SRC
apt=(apt-get -q
	-o "Dir::Etc::sourcelist=$dir/etc/sources.list" -o Dir::Etc::sourceparts=/dev/null
	-o "Dir::State=$dir/state" -o "Dir::State::status=$dir/state/status"
	-o "Dir::Cache=$dir/cache" -o Dir::Etc::preferences=/dev/null
	-o Dir::Etc::preferencesparts=/dev/null
	-o APT::Architecture=ppc64el -o APT::Architectures=ppc64el
	-o Debug::NoLocking=1)

# ppc64el indexes can be rejected while a mirror syncs: retry before failing.
for try in 1 2 3 4 5; do
	if "${apt[@]}" update >"$dir/update.log" 2>&1; then
		break
	fi
	[ "$try" = 5 ] && { cat "$dir/update.log" >&2; exit 1; }
	log "apt-get update failed (try $try), retrying in 10 s"
	sleep 10
done

# The newest 6.1 pseries kernel image that bookworm (with its security updates) has.
kimg=$("${apt[@]}" -s install --no-install-recommends linux-image-powerpc64le 2>/dev/null |
	sed -n 's/^Inst \(linux-image-6\.1\.[^ ]*-powerpc64le\) .*/\1/p' | grep -v unsigned | head -n1)
[ -n "$kimg" ] || { log "no linux-image-6.1 for ppc64el found"; exit 1; }
log "guest kernel: $kimg"

# Every package of the closure: apt simulates an install on an empty dpkg status.
"${apt[@]}" -s install --no-install-recommends -t bookworm-backports \
	qemu-system-ppc qemu-system-data busybox-static "$kimg" >"$dir/closure.log" 2>&1 || {
	cat "$dir/closure.log" >&2
	exit 1
}
# name=version, so that download takes the versions the closure chose (backports' QEMU).
mapfile -t pkgs < <(sed -n 's/^Inst \([^ ]*\) (\([^ ]*\) .*/\1=\2/p' "$dir/closure.log")
# What the guest and QEMU never use: firmware blobs and the kernel's postinst helpers need
# nothing from the rest, but their dependencies (initramfs-tools, ...) are skipped likewise.
keep=()
for p in "${pkgs[@]}"; do
	case "${p%%=*}" in
	initramfs-tools* | linux-base | kmod | udev | systemd* | dracut* | firmware-* | apparmor) ;;
	*) keep+=("$p") ;;
	esac
done
log "downloading ${#keep[@]} packages (of ${#pkgs[@]} in the closure)"
rm -f "$dir"/debs/*.deb
(cd "$dir/debs" && "${apt[@]}" download "${keep[@]}" >"$dir/download.log" 2>&1) || {
	cat "$dir/download.log" >&2
	exit 1
}
rm -rf "$root.new"
mkdir -p "$root.new"
for d in "$dir"/debs/*.deb; do
	dpkg-deb -x "$d" "$root.new"
done
rm -rf "$root"
mv "$root.new" "$root"
echo "$kimg" >"$dir/guest-kernel"
touch "$stamp"
log "unpacked into $root ($(du -sh "$root" | cut -f1))"
echo "$root"
