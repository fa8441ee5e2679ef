#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boots a test kernel in QEMU (TCG) with an initramfs whose /init is tce-init, which loads the
# module, runs the tce_accel_user suite and powers off; then checks the console log:
#
#   scripts/qemu-test.sh x86_64|ppc64le KERNEL_BUILD_DIR MODULE_KO [--kasan]
#
# The log is saved as KERNEL_BUILD_DIR/tce-test-ARCH.log. The kernel prints one KTAP document
# per KUnit run (an empty one at boot, one per module load) and tce-init prints its suite as
# another, but kunit.py parses only the first document of a log. So the documents are joined
# into one (top-level plans added up, suite numbers continued) in tce-test-ARCH.ktap, and
# `kunit.py parse` runs on that. The run fails if QEMU does not power off in time, if
# kunit.py parse fails, if a suite of TCE_EXPECT_SUITES (space-separated, default
# "tce_accel_user") has no `ok` line, if any `not ok` line is printed, or if the log has a
# `WARNING:`, `BUG:`, `Oops` or `Kernel panic` line (with --kasan also `BUG: KASAN`).
#
# Environment: TCE_EXPECT_SUITES; TCE_TIMEOUT (seconds, default 300, 600 with --kasan);
# TCE_QEMU_CPU (x86_64 -cpu, default max); TCE_APPEND (more kernel command-line words, e.g.
# tce.timeout=60); TCE_SHIM_TESTS (the tce_shim kernel-backend test binary, run by tce-init's
# shim_kernel_backend test); TCE_DDW (the tce-ddw tool, whose benchmark tce-init's ddw_bench
# runs on the module); TCE_VMM (the sample VMM samples/tce_vmm, built for ppc64le, which
# tce-init's sample_vmm runs) and TCE_VMM_TEST (its tests, tools/testing/tce-vmm-test:
# guest_e2e runs `tce-vmm-test check`, guest_bench `tce-vmm-test bench`, vfio_attach
# `tce-vmm-test vfio` (on the emulated virtio-rng-pci device, 0000:00:02.0, which the ppc64le
# command line adds), unload_during_hypercalls `tce-vmm-test hammer`, and so on, inside the
# emulated POWER host; all are skipped when either is not given, and always on x86_64); TCE_SHUTDOWN (poweroff or
# reboot: how tce-init ends the VM; default reboot on x86_64, whose test kernel cannot power
# off (no usable ACPI), poweroff on ppc64le);
# TCE_KERNEL_SRC (kernel tree with kunit.py, default from
# scripts/kernel-source.sh); TCE_INIT (a tce-init binary to use instead of building one);
# TCE_VERBOSE=1 to copy the console to stderr as it runs; TCE_QEMU_EXTRA (more QEMU arguments); TCE_QEMU_SMP (ppc64le vCPUs of the
# emulated host, default 2, so that the sample VMM's vCPU threads run in parallel).
#
# If guest_bench ran, its JSON line (printed by tce-init in numbered parts, since a kernel log
# record holds at most 1 KiB) is joined again, saved as KERNEL_BUILD_DIR/tce-vmm-bench-ARCH.json
# and appended whole to the end of the log, as "[qemu-test] TCE_VMM_JSON {...}", for tools that
# read the benchmark from the log (tce-latency).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

usage="usage: qemu-test.sh x86_64|ppc64le KERNEL_BUILD_DIR MODULE_KO [--kasan]"
arch=${1:?$usage}
build=${2:?$usage}
ko=${3:?$usage}
kasan=0
case "${4:-}" in
"") ;;
--kasan) kasan=1 ;;
*)
	echo "$usage" >&2
	exit 2
	;;
esac

log() { printf '[qemu-test %s] %s\n' "$arch" "$*" >&2; }

build=$(cd "$build" && pwd)
src=${TCE_KERNEL_SRC:-$(scripts/kernel-source.sh)}
expect=${TCE_EXPECT_SUITES:-tce_accel_user}
limit=${TCE_TIMEOUT:-$([ "$kasan" = 1 ] && echo 600 || echo 300)}

case "$arch" in
x86_64)
	image="$build/arch/x86/boot/bzImage"
	qemu=(qemu-system-x86_64 -accel tcg -cpu "${TCE_QEMU_CPU:-max}" -m 1024)
	console=ttyS0
	shutdown=${TCE_SHUTDOWN:-reboot}
	;;
ppc64le)
	image="$build/vmlinux"
	# virtio-rng-pci: a PCI device (0000:00:02.0) for tce-init's vfio_attach to bind to
	# vfio-pci and pass through to the sample VMM's guest.
	qemu=(qemu-system-ppc64 -M pseries,cap-nested-hv=on -cpu power9 -accel tcg -m 2048
		-smp "${TCE_QEMU_SMP:-2}" -device virtio-rng-pci)
	console=hvc0
	shutdown=${TCE_SHUTDOWN:-poweroff}
	;;
*)
	log "unknown architecture (want x86_64 or ppc64le)"
	exit 2
	;;
esac
if [ ! -f "$image" ]; then
	log "no kernel image $image (scripts/kernel-build.sh builds it)"
	exit 1
fi
# More QEMU arguments, word-split (e.g. "-plugin FILE,out=PATH" for scripts/cost.sh).
# shellcheck disable=SC2206
qemu+=(${TCE_QEMU_EXTRA:-})

init=${TCE_INIT:-$(scripts/build-init.sh "$arch" | tail -n1)}
if [ -f "$ko" ]; then
	log "module: $ko"
else
	log "module $ko does not exist: booting without it (load_module will fail)"
fi

# The initramfs: /init, /tce_accel.ko, /tce-shim-tests, /tce-ddw, /tce-vmm and /tce-vmm-test if
# TCE_SHIM_TESTS, TCE_DDW, TCE_VMM and TCE_VMM_TEST name them, and /dev (with console and null, so that init
# has its standard descriptors before it mounts devtmpfs), /proc and /sys. Written directly in
# cpio "newc" format, so that no device node has to be made on the host.
initrd="$build/tce-test-$arch.cpio"
python3 - "$initrd" "$init" "$ko" "${TCE_SHIM_TESTS:-}" "${TCE_DDW:-}" "${TCE_VMM:-}" "${TCE_VMM_TEST:-}" <<'PY'
import os, stat, sys

out, init, ko, shim, ddw, vmm, vmm_test = sys.argv[1:8]
entries = [
    ("dev", stat.S_IFDIR | 0o755, 0, b""),
    ("dev/console", stat.S_IFCHR | 0o600, (5, 1), b""),
    ("dev/null", stat.S_IFCHR | 0o666, (1, 3), b""),
    ("proc", stat.S_IFDIR | 0o755, 0, b""),
    ("sys", stat.S_IFDIR | 0o755, 0, b""),
    ("init", stat.S_IFREG | 0o755, 0, open(init, "rb").read()),
]
if os.path.isfile(ko):
    entries.append(("tce_accel.ko", stat.S_IFREG | 0o644, 0, open(ko, "rb").read()))
if shim:
    entries.append(("tce-shim-tests", stat.S_IFREG | 0o755, 0, open(shim, "rb").read()))
if ddw:
    entries.append(("tce-ddw", stat.S_IFREG | 0o755, 0, open(ddw, "rb").read()))
if vmm:
    entries.append(("tce-vmm", stat.S_IFREG | 0o755, 0, open(vmm, "rb").read()))
if vmm_test:
    entries.append(("tce-vmm-test", stat.S_IFREG | 0o755, 0, open(vmm_test, "rb").read()))

def pad(n):
    return b"\0" * (-n % 4)

with open(out + ".new", "wb") as f:
    for ino, (name, mode, rdev, data) in enumerate(entries + [("TRAILER!!!", 0, 0, b"")], 1):
        major, minor = rdev if rdev else (0, 0)
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, major, minor, len(name) + 1, 0]
        head = b"070701" + b"".join(b"%08X" % v for v in fields)
        f.write(head + name.encode() + b"\0")
        f.write(pad(len(head) + len(name) + 1))
        f.write(data + pad(len(data)))
os.replace(out + ".new", out)
PY

logf="$build/tce-test-$arch.log"
ktap="$build/tce-test-$arch.ktap"
# A benchmark report of an earlier run must not pass for this run's.
rm -f "$build/tce-vmm-bench-$arch.json"
append="console=$console panic=-1 printk.devkmsg=on printk.time=1 tce.module=/tce_accel.ko"
append+=" tce.shutdown=$shutdown"
append+=" ${TCE_APPEND:-}"
log "booting $(basename "$image") under ${qemu[0]} (${qemu[*]:1}), limit ${limit}s; log: $logf"
start=$(date +%s.%N)
set +e
if [ "${TCE_VERBOSE:-0}" = 1 ]; then
	timeout -k 10 "$limit" "${qemu[@]}" -nographic -no-reboot -kernel "$image" -initrd "$initrd" \
		-append "$append" </dev/null 2>&1 | tee "$logf" >&2
	qrc=${PIPESTATUS[0]}
else
	timeout -k 10 "$limit" "${qemu[@]}" -nographic -no-reboot -kernel "$image" -initrd "$initrd" \
		-append "$append" </dev/null >"$logf" 2>&1
	qrc=$?
fi
set -e
secs=$(echo "$(date +%s.%N) - $start" | bc)
secs=$(printf '%.1f' "$secs")

failed=0
case "$qrc" in
0) log "QEMU exited after ${secs}s" ;;
124 | 137)
	log "FAIL: QEMU still running after ${limit}s: killed"
	failed=1
	;;
*)
	log "FAIL: QEMU exited with status $qrc after ${secs}s"
	failed=1
	;;
esac

# Join the KTAP documents, check the log and print the summary.
if ! python3 - "$logf" "$ktap" "$expect" "$kasan" "$arch" "$build/tce-vmm-bench-$arch.json" <<'PY'; then
import re, sys

logf, ktap, expect, kasan, arch, bench_json = sys.argv[1:7]
raw = open(logf, errors="replace").read().splitlines()
prefix = re.compile(r"^\[\s*\d+\.\d+\] ?")
lines = [prefix.sub("", l.rstrip()) for l in raw]

def say(msg):
    print(f"[qemu-test {arch}] {msg}", file=sys.stderr)

# Join the top-level documents: each "KTAP version 1" + "1..N" at the start of a line opens
# one; its top-level results are renumbered after the suites of the earlier documents.
body, total, offset, started = [], 0, 0, False
plan = re.compile(r"1\.\.(\d+)$")
result = re.compile(r"(ok|not ok) (\d+)(.*)$")
i = 0
while i < len(lines):
    l = lines[i]
    if l == "KTAP version 1" and i + 1 < len(lines) and plan.match(lines[i + 1]):
        offset = total
        total += int(plan.match(lines[i + 1]).group(1))
        started = True
        i += 2
        continue
    if started:
        m = result.match(l)
        if m:
            l = f"{m.group(1)} {offset + int(m.group(2))}{m.group(3)}"
        body.append(l)
    i += 1
with open(ktap, "w") as f:
    f.write("\n".join(["KTAP version 1", f"1..{total}"] + body) + "\n")

# Per-suite counts of the cases directly under each top-level suite.
suites, counts = [], {"pass": 0, "fail": 0, "skip": 0}
case = re.compile(r"    (ok|not ok) \d+ (.*)$")
for l in body:
    m = case.match(l)
    if m:
        kind = "fail" if m.group(1) == "not ok" else "skip" if "# SKIP" in m.group(2) else "pass"
        counts[kind] += 1
        continue
    m = result.match(l)
    if m:
        name, _, directive = m.group(3).strip().partition(" #")
        suites.append((m.group(1), name, directive.strip(), counts))
        counts = {"pass": 0, "fail": 0, "skip": 0}

problems = []
if not any(l.startswith("tce-init: done in") for l in lines):
    problems.append("tce-init did not finish (no 'tce-init: done')")
if not any(re.search(r"reboot: (Power down|Restarting system)", l) for l in lines):
    problems.append("the guest did not power off or restart")
if not started:
    problems.append("no KTAP output at all")
for name in expect.split():
    if not any(s == "ok" and n == name and not d for s, n, d, _ in suites):
        problems.append(f"suite {name}: no 'ok' result")
not_ok = [l.strip() for l in body if re.match(r"\s*not ok \d+", l)]
if not_ok:
    problems.append(f"{len(not_ok)} 'not ok' lines: " + "; ".join(not_ok[:8]))
bad = re.compile(r"WARNING:|BUG:|Oops|Kernel panic" + (r"|BUG: KASAN" if kasan == "1" else ""))
kernel = [l.strip() for l in lines if bad.search(l)]
if kernel:
    problems.append(f"{len(kernel)} kernel problem lines: " + "; ".join(kernel[:5]))
if kasan == "1":
    k = sum("BUG: KASAN" in l for l in lines)
    say(f"KASAN reports: {k}")

# guest_bench's JSON line, whole or in numbered parts ("[i/n] ...").
marker = "TCE_VMM_JSON "
diag = re.compile(r"\s*# guest_bench: (.*)$")
part = re.compile(r"\[(\d+)/(\d+)\] (.*)$")
json_line, parts = None, []
for l in lines:
    m = diag.match(l)
    if not m:
        continue
    text = m.group(1)
    p = part.match(text)
    if p:
        if p.group(1) == "1":
            parts = []
        parts.append(p.group(3))
        if p.group(1) == p.group(2) and "".join(parts).startswith(marker):
            json_line = "".join(parts)
    elif text.startswith(marker):
        json_line = text
if json_line:
    with open(bench_json, "w") as f:
        f.write(json_line[len(marker):] + "\n")
    with open(logf, "a") as f:
        f.write(f"[qemu-test] {json_line}\n")
    say(f"tce-vmm-test bench JSON: {bench_json} (also appended to the log)")

say(f"{len(suites)} suites in {total} planned:")
for s, n, d, c in suites:
    extra = f" # {d}" if d else ""
    say(f"  {s:6} {n}{extra}: {c['pass']} passed, {c['fail']} failed, {c['skip']} skipped")
for p in problems:
    say(f"FAIL: {p}")
sys.exit(1 if problems else 0)
PY
	failed=1
fi

log "kunit.py parse $ktap"
if ! python3 "$src/tools/testing/kunit/kunit.py" parse "$ktap" >&2; then
	log "FAIL: kunit.py parse failed"
	failed=1
fi

if [ "$failed" = 0 ]; then
	log "PASS in ${secs}s (log: $logf)"
else
	log "FAILED after ${secs}s (log: $logf)"
fi
exit "$failed"
