#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Names the addresses of a tce_cost profile by function: for each job of alike TCE hypercalls,
# the instructions per call that each function of the emulated host's kernel (or of
# tce_accel.ko) executed, most first. With --compare, for each hypercall and count measured on
# both LIOBNs A and B, the functions whose instructions per call differ, by how much.
#
#   scripts/cost-profile.sh PROFILE LOG SYSTEM_MAP MODULE_KO [--top N] [--compare A B]
#
# PROFILE is the plugin's profile=FILE, LOG the boot's log (tce-init prints where the module's
# code was loaded: "guest_bench: module text at 0x..."), SYSTEM_MAP the kernel build's
# System.map, MODULE_KO the module that was loaded. --top: functions per job (default 25).
# make demo compares tce_accel's LIOBN with the C path's (the benchmark's JSON names them).
set -euo pipefail
usage() { sed -n '3,16s/^# \{0,1\}//p' "$0" >&2; exit 2; }
[ $# -ge 4 ] || usage
profile=$1 log=$2 map=$3 ko=$4 top=25 cmp_a= cmp_b=
shift 4
while [ $# -gt 0 ]; do
	case "$1" in
	--top) top=${2:?}; shift 2 ;;
	--compare) cmp_a=${2:?} cmp_b=${3:?}; shift 3 ;;
	*) usage ;;
	esac
done
base=$(sed -n 's/.*guest_bench: module text at \(0x[0-9a-f]*\).*/\1/p' "$log" | tail -1)
[ -n "$base" ] || { echo "cost-profile: $log does not say where the module's text is" >&2; exit 1; }
syms=$(mktemp)
trap 'rm -f "$syms"' EXIT
# The module's function symbols in its .text section, as offsets into it.
llvm-objdump-22 -t "$ko" | awk '$3 == "F" && $4 == ".text" { print $1, $NF }' |
	python3 -c '
import sys
base = int(sys.argv[1], 16)
for l in sys.stdin:
    off, name = l.split()
    print("%016x t [tce_accel]%s" % (base + int(off, 16), name))' "$base" >"$syms"
python3 - "$profile" "$map" "$syms" "$top" "$cmp_a" "$cmp_b" <<'PY'
import bisect, re, sys, subprocess
profile, kmap, msyms, top = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
cmp_a, cmp_b = (int(x, 0) if x else None for x in sys.argv[5:7])
addrs, names = [], []
for path in (kmap, msyms):
    for l in open(path):
        p = l.split()
        if len(p) >= 3 and p[1] in "tTwW":
            addrs.append(int(p[0], 16)); names.append(p[2])
order = sorted(range(len(addrs)), key=addrs.__getitem__)
addrs = [addrs[i] for i in order]; names = [names[i] for i in order]
# Demangle Rust names when rustfilt or llvm-cxxfilt is there.
def demangle(ns):
    try:
        out = subprocess.run(["llvm-cxxfilt-22"], input="\n".join(ns), capture_output=True,
                             text=True, check=True).stdout.split("\n")
        return [re.sub(r"::h[0-9a-f]{16}$", "", o) for o in out[:len(ns)]]
    except (OSError, subprocess.CalledProcessError):
        return ns
def name_of(pc):
    i = bisect.bisect_right(addrs, pc) - 1
    return names[i] if i >= 0 else "?"
jobs = []
for l in open(profile):
    if l.startswith("tce_cost "):
        f = dict(kv.split("=", 1) for kv in l.split()[1:])
        jobs.append({"hcall": int(f["hcall"], 0), "liobn": int(f["liobn"], 0),
                     "npages": int(f["npages"]), "calls": int(f["calls"]),
                     "insns": int(f["insns"]), "by": {}})
    elif l.startswith("pc=") and jobs:
        pc, n = (int(x.split("=")[1], 0) for x in l.split())
        by = jobs[-1]["by"]
        k = name_of(pc)
        by[k] = by.get(k, 0) + n
NAMES = {0x1c: "H_GET_TCE", 0x20: "H_PUT_TCE", 0x138: "H_STUFF_TCE",
         0x13c: "H_PUT_TCE_INDIRECT"}
def title(j):
    name = NAMES.get(j["hcall"], hex(j["hcall"]))
    return name + (f"({j['npages']})" if j["hcall"] in (0x138, 0x13c) else "")
def per_call(j):
    return {k: n / j["calls"] for k, n in j["by"].items()}
if cmp_a is None:
    for j in jobs:
        rows = sorted(per_call(j).items(), key=lambda kv: -kv[1])
        shown = rows[:top]
        print(f"{title(j)} on LIOBN {j['liobn']:#x}: {j['insns']} instructions per call "
              "(median), by function:")
        for (k, n), d in zip(shown, demangle([k for k, _ in shown])):
            print(f"  {n:9.1f}  {d}")
        rest = sum(n for _, n in rows[top:])
        if rest:
            print(f"  {rest:9.1f}  ({len(rows) - top} more functions)")
else:
    seen = set()
    for a in jobs:
        key = (a["hcall"], a["npages"])
        if a["liobn"] != cmp_a or key in seen:
            continue
        b = next((j for j in jobs if j["liobn"] == cmp_b and (j["hcall"], j["npages"]) == key),
                 None)
        if b is None:
            continue
        seen.add(key)
        pa, pb = per_call(a), per_call(b)
        diff = {k: pa.get(k, 0) - pb.get(k, 0) for k in set(pa) | set(pb)}
        rows = [kv for kv in sorted(diff.items(), key=lambda kv: -abs(kv[1])) if abs(kv[1]) >= 1]
        shown = rows[:top]
        print(f"{title(a)}: {a['insns']} against {b['insns']} instructions per call "
              f"({a['insns'] - b['insns']:+d}); the functions that differ "
              f"(LIOBN {cmp_a:#x} / {cmp_b:#x} / difference):")
        for (k, d), name in zip(shown, demangle([k for k, _ in shown])):
            if len(name) > 100:
                name = name[:97] + "..."
            print(f"  {pa.get(k, 0):8.1f} {pb.get(k, 0):8.1f} {d:+8.1f}  {name}")
        rest = sum(d for _, d in rows[top:])
        if rows[top:]:
            print(f"  {'':17} {rest:+8.1f}  ({len(rows) - top} more functions)")
PY
