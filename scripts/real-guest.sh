#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The real-client test: Debian's unmodified QEMU (ppc64el) runs a real Linux pseries guest
# inside the emulated POWER KVM host, whose kernel is one of the project's ppc64le test kernels
# with tce_accel.ko loaded. The guest's ibmvscsi and virtio-blk (default window and DDW) DMA goes
# through TCE hypercalls; tools/testing/real-guest/host-init.sh runs the guest on the module
# (takeover=1) and on KVM's C path (takeover=0) in one boot, with a migration to a file and back
# in each, and prints KTAP, checked here with kunit.py parse, and figures, printed here as a
# table side by side. On ppc64le-debug only the module's path runs (TCE_REAL_GUEST_PATHS=accel,c
# for both).
#
#   scripts/real-guest.sh ppc64le|ppc64le-debug [MODULE_KO]
#
# Everything it fetches (scripts/real-guest-fetch.sh) and builds lives in the cache. The log is
# $CACHE/build-NAME/real-guest.log, the table also $CACHE/build-NAME/real-guest.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

name=${1:?usage: real-guest.sh ppc64le|ppc64le-debug [MODULE_KO]}
case "$name" in
ppc64le | ppc64le-debug) ;;
*) echo "real-guest.sh: the real guest needs a ppc64le kernel, not '$name'" >&2; exit 2 ;;
esac
log() { printf '[real-guest %s] %s\n' "$name" "$*" >&2; }

CACHE=${TCE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tce-accel}
build="$CACHE/build-$name"
ko=${2:-}
[ -n "$ko" ] || ko=$(scripts/module-build.sh "$name" 2>/dev/null)
[ -f "$build/vmlinux" ] || { log "no kernel in $build (scripts/kernel-build.sh $name)"; exit 1; }
root=$(scripts/real-guest-fetch.sh)
kver=$(sed 's/^linux-image-//' "$CACHE/ppc64el/guest-kernel")
work="$build/real-guest"
rm -rf "$work"
mkdir -p "$work"

log "building the guest's and the host's initramfs"
python3 - "$root" "$kver" "$work" "$ko" <<'PY'
import os, re, stat, subprocess, sys

root, kver, work, ko = sys.argv[1:5]
here = "tools/testing/real-guest"

def cpio(out, entries):
    """Writes a newc archive of (name, mode, data or symlink target) entries."""
    def pad(n):
        return b"\0" * (-n % 4)
    with open(out, "wb") as f:
        for ino, (name, mode, data) in enumerate(entries + [("TRAILER!!!", 0, b"")], 1):
            fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0]
            head = b"070701" + b"".join(b"%08X" % v for v in fields)
            f.write(head + name.encode() + b"\0" + pad(len(head) + len(name) + 1))
            f.write(data + pad(len(data)))

D, F, X = stat.S_IFDIR | 0o755, stat.S_IFREG | 0o644, stat.S_IFREG | 0o755
def read(p):
    return open(p, "rb").read()

# The guest: busybox, its modules in load order (dependencies from .modinfo), /init.
mods = f"{root}/lib/modules/{kver}/kernel"
by_name = {}
for d, _, files in os.walk(mods):
    for fn in files:
        if fn.endswith(".ko"):
            by_name[fn[:-3].replace("-", "_")] = os.path.join(d, fn)
def depends(m):
    info = read(by_name[m])
    found = re.search(rb"depends=([^\0]*)\0", info)
    return [x.decode().replace("-", "_") for x in found.group(1).split(b",") if x] if found else []
order = []
def visit(m):
    if m in order:
        return
    for d in depends(m):
        visit(d)
    order.append(m)
wanted = [l.strip() for l in open(f"{here}/guest-modules") if l.strip() and not l.startswith("#")]
for m in wanted:
    visit(m)
guest = [("bin", D, b""), ("dev", D, b""), ("proc", D, b""), ("sys", D, b""), ("tmp", D, b""),
         ("modules", D, b""),
         ("bin/busybox", X, read(f"{root}/bin/busybox")),
         ("init", X, read(f"{here}/guest-init.sh")),
         ("modules.order", F, "".join(m + ".ko\n" for m in order).encode())]
for m in order:
    guest.append((f"modules/{m}.ko", F, read(by_name[m])))
for applet in ["sh", "mount", "insmod", "sleep", "cut", "md5sum", "dd", "sed", "sort", "uniq",
               "cat", "sync", "poweroff", "wc", "read", "echo"]:
    guest.append((f"bin/{applet}", stat.S_IFLNK | 0o777, b"busybox"))
cpio(f"{work}/guest-initrd.cpio", guest)
print(f"guest modules: {' '.join(order)}", file=sys.stderr)

# The host: busybox, Debian's QEMU with the shared libraries it needs, its firmware, the
# guest, the module and /init.
libdirs = [f"{root}/lib/powerpc64le-linux-gnu", f"{root}/usr/lib/powerpc64le-linux-gnu"]
def needed(path):
    out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True, check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)
def find_lib(name):
    for d in libdirs:
        for dirpath, _, files in os.walk(d):
            if name in files:
                return os.path.join(dirpath, name)
    raise SystemExit(f"library {name} not found under {root}")
qemu = f"{root}/usr/bin/qemu-system-ppc64"
libs, todo = {}, needed(qemu)
while todo:
    n = todo.pop()
    if n in libs:
        continue
    p = find_lib(n)
    libs[n] = os.path.realpath(p)
    todo += needed(libs[n])
host = [(d, D, b"") for d in ["bin", "dev", "proc", "sys", "tmp", "lib", "lib64", "guest",
                               "usr", "usr/bin", "usr/share", "usr/share/qemu", "var"]]
host += [("bin/busybox", X, read(f"{root}/bin/busybox")),
         ("init", X, read(f"{here}/host-init.sh")),
         ("usr/bin/qemu-system-ppc64", X, read(qemu)),
         ("usr/share/qemu/vof.bin", F, read(f"{root}/usr/share/qemu/vof.bin")),
         ("guest/vmlinux", F, read(f"{root}/boot/vmlinux-{kver}")),
         ("guest/initrd.cpio", F, read(f"{work}/guest-initrd.cpio")),
         ("tce_accel.ko", F, read(ko))]
for n, p in sorted(libs.items()):
    host.append((f"lib/{n}", X, read(p)))
host.append(("lib64/ld64.so.2", stat.S_IFLNK | 0o777, b"/lib/ld64.so.2"))
host.append(("bin/qemu-system-ppc64", stat.S_IFLNK | 0o777, b"/usr/bin/qemu-system-ppc64"))
cpio(f"{work}/host-initrd.cpio", host)
size = os.path.getsize(f"{work}/host-initrd.cpio")
print(f"host initramfs: {len(libs)} libraries, {size >> 20} MiB", file=sys.stderr)
PY

append="console=hvc0 panic=-1 quiet"
# The debug kernel hunts leaks and corruption in the module: the module's path only.
[ "$name" = ppc64le-debug ] && append+=" slub_debug=FZPU panic_on_warn=1 rg.paths=${TCE_REAL_GUEST_PATHS:-accel}"
[ "$name" = ppc64le ] && append+=" rg.paths=${TCE_REAL_GUEST_PATHS:-accel,c}"
logf="$build/real-guest.log"
log "booting the emulated POWER host; log: $logf"
start=$(date +%s)
set +e
timeout -k 10 "${TCE_REAL_GUEST_TIMEOUT:-900}" qemu-system-ppc64 -M pseries,cap-nested-hv=on -cpu power9 \
	-accel tcg -m 3072 -smp 2 -nographic -no-reboot -kernel "$build/vmlinux" \
	-device virtio-rng-pci,iommu_platform=on,disable-legacy=on \
	-initrd "$work/host-initrd.cpio" -append "$append" </dev/null >"$logf" 2>&1
qrc=$?
set -e
log "QEMU exited with status $qrc after $(($(date +%s) - start))s"

src=$(scripts/kernel-source.sh)
python3 - "$logf" "$build/real-guest.ktap" "$build/real-guest.txt" "$name" <<'PY'
import re, sys
logf, ktap, table, name = sys.argv[1:5]
lines = [re.sub(r"^\[\s*\d+\.\d+\] ?", "", l.rstrip()) for l in open(logf, errors="replace")]
# The kernel's console may not have ended its line when /init's first one comes.
start = next((i for i, l in enumerate(lines) if l.endswith("KTAP version 1")), None)
body = ["KTAP version 1"] + lines[start + 1:] if start is not None else []
open(ktap, "w").write("\n".join(l for l in body if re.match(r"\s*(KTAP|1\.\.|ok|not ok|#)", l)) + "\n")
figures = {}
for l in lines:
    m = re.match(r"# real_guest: (accel|c) (.*)$", l)
    if m:
        figures.setdefault(m.group(2).split()[0], {})[m.group(1)] = m.group(2)
rows = []
def val(path, key, field):
    s = figures.get(key, {}).get(path, "")
    w = s.split()
    return w[w.index(field) + 1] if field in w else "-"
spec = [("guest boot to /init (s)", "boot_to_init_s", "boot_to_init_s"),
        ("ibmvscsi read, best of 3 (MiB/s)", "read_mib_s", None),
        ("TCE tables in QEMU", "tables_in_qemu", "tables_in_qemu"),
        ("  of them the module's", "tables_in_qemu", "module_tables"),
        ("pages of the module's tables", "tables_in_qemu", "table_pages"),
        ("  the same after migration", "table_pages_after_migration", "table_pages_after_migration"),
        ("QEMU's RSS of its table mappings (KiB)", "tables_in_qemu", "qemu_table_rss_kb"),
        ("  after migration (which reads them all)", "table_pages_after_migration", "qemu_table_rss_kb_after_migration"),
        ("QEMU VmLck, locked memory (KiB)", "tables_in_qemu", "qemu_vmlck_kb"),
        ("guest H_PUT_TCE", "guest_hcalls", "put"),
        ("guest H_PUT_TCE_INDIRECT", "guest_hcalls", "indirect"),
        ("guest H_STUFF_TCE", "guest_hcalls", "stuff"),
        ("module H_PUT_TCE", "module_hcalls", "put"),
        ("module H_PUT_TCE_INDIRECT", "module_hcalls", "indirect"),
        ("module H_STUFF_TCE", "module_hcalls", "stuff"),
        ("TCE hypercalls that reached QEMU", "tce_exits_to_qemu", "tce_exits_to_qemu"),
        ("VFIO: random bytes from the device", "vfio_rng_bytes", "vfio_rng_bytes"),
        ("VFIO: QEMU's group attaches", "vfio_rng_bytes", "group_attaches"),
        ("VFIO: groups on the module's tables", "vfio_rng_bytes", "module_groups"),
        ("migration file (KiB)", "migration_file_kb", "migration_file_kb")]
out = [f"real guest under Debian's QEMU on the emulated POWER host ({name}):",
       f"  {'':38} {'tce_accel':>12} {'KVM C path':>12}"]
for label, key, field in spec:
    if key == "read_mib_s":
        for d, dev in (("sda", "ibmvscsi"), ("vda", "virtio-blk (DDW)")):
            vals = []
            for p in ("accel", "c"):
                s = [x for x in lines if x.startswith(f"# real_guest: {p} read_mib_s {d} ")]
                w = s[0].split() if s else []
                vals.append(w[w.index("best") + 1] if "best" in w else "-")
            runs = lambda p: next((x.split("runs", 1)[1].strip() for x in lines
                                   if x.startswith(f"# real_guest: {p} read_mib_s {d} ")), "")
            out.append(f"  {dev + ' read, best of 3 (MiB/s)':38} {vals[0]:>12} {vals[1]:>12}"
                       f"   (runs: {runs('accel')} | {runs('c')})")
        continue
    out.append(f"  {label:38} {val('accel', key, field):>12} {val('c', key, field):>12}")
warm = next((l.split("boot_to_init_s", 1)[1].split()[0] for l in lines
             if l.startswith("# real_guest: warm_up boot_to_init_s")), None)
if warm:
    out.append(f"  (both boots after a warm-up boot on the C path, not compared: {warm} s)")
text = "\n".join(out)
open(table, "w").write(text + "\n")
print(text)
bad = [l for l in lines if re.search(r"WARNING:|BUG:|Oops|Kernel panic|kmemleak: .* new suspected", l)]
if bad:
    print("[real-guest] kernel problems:\n  " + "\n  ".join(bad[:10]), file=sys.stderr)
    sys.exit(1)
if not any(l == "real-guest: done" for l in lines):
    print("[real-guest] the host's /init did not finish", file=sys.stderr)
    sys.exit(1)
PY
python3 "$src/tools/testing/kunit/kunit.py" parse "$build/real-guest.ktap" >"$build/real-guest.parse" 2>&1 || {
	cat "$build/real-guest.parse" >&2
	grep -E '^\s*(not ok|# )' "$build/real-guest.ktap" >&2 || true
	log "FAIL: the real-guest run"
	exit 1
}
summary=$(grep -E 'Testing complete' "$build/real-guest.parse" | tail -n1)
echo "$summary" >&2
# kunit.py parse lets errors (a wrong plan, a missing result) through: they fail here.
if echo "$summary" | grep -qE 'failed|crashed|errors'; then
	log "FAIL: the real-guest run"
	exit 1
fi
log "passed"
