#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
#
# /init of the emulated POWER KVM host (L1) for the real-guest run (scripts/real-guest.sh).
# Loads tce_accel.ko and runs the same real Linux guest under Debian's unmodified QEMU twice in
# one boot, after a warm-up boot that is not measured: with takeover=1 (every TCE table QEMU creates is the module's) and with takeover=0
# (KVM's C path). Each run boots the guest, lets it check and time its disks, samples the
# tables while it waits, migrates it to a file, quits, restores it in a second QEMU
# (-incoming), lets it check its disks again and waits for it to power off. It prints KTAP, and
# "# real_guest:" lines with the figures that scripts/real-guest.sh turns into a table.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t debugfs debugfs /sys/kernel/debug
mkdir -p /tmp /var/tmp

say() { echo "# real_guest: $*"; }
now() { cut -d' ' -f1 /proc/uptime; }
tables() { cat /sys/kernel/debug/tce_accel/tables 2>/dev/null; }

T=/tmp
PARAMS=/sys/module/tce_accel/parameters
n=0
fails=0
result() { # result OK NAME [diagnostic]
	n=$((n + 1))
	[ -n "$3" ] && echo "    # $3"
	if [ "$1" = 1 ]; then echo "    ok $n $2"; else echo "    not ok $n $2"; fails=$((fails + 1)); fi
}

# Waits until the serial log of the running QEMU has a line starting with "$1", or QEMU is
# gone, or $2 seconds passed. Returns 0 if the line came.
wait_for() {
	i=0
	while [ $i -lt $(($2 * 10)) ]; do
		grep -q "^$1" $T/serial.log 2>/dev/null && return 0
		kill -0 $qpid 2>/dev/null || return 1
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# The resident memory (KiB) of QEMU's mappings of its TCE tables: a page KVM allocates on a
# read fault counts, the zero page the module maps for one does not.
table_rss() {
	awk '/kvm-spapr-tce/ { t = 1; next } /^[0-9a-f]+-[0-9a-f]+ / { t = 0 } t && /^Rss:/ { s += $2 }
		END { print s + 0 }' /proc/$qpid/smaps
}

# Sends a monitor command to the running QEMU.
mon() { echo "$1" >$T/mon.in; }

# maxmem and 64 KiB IOMMU pages make the guest's DDW (it covers all the memory the guest may
# ever have) large and sparse: 2^18 entries of which the guest maps 512 MiB worth.
QEMU_ARGS="-M pseries,x-vof=on -accel kvm -cpu host -m 512M,slots=1,maxmem=16G -smp 1
	-global spapr-pci-host-bridge.pgsz=0x11000 -display none -nodefaults
	-kernel /guest/vmlinux -initrd /guest/initrd.cpio
	-drive file=$T/vscsi.img,format=raw,if=none,id=d0 -device spapr-vscsi,id=vscsi0
	-device scsi-hd,drive=d0,bus=vscsi0.0
	-drive file=$T/vblk.img,format=raw,if=none,id=d1
	-device virtio-blk-pci,drive=d1,iommu_platform=on,disable-legacy=on"
# The guest counts its hypercalls from boot with the powerpc:hcall_exit tracepoint.
APPEND="console=hvc0 quiet trace_event=powerpc:hcall_exit trace_buf_size=16M"

# Starts QEMU with the console and the monitor on pipes in $T; $1 names its logs, further
# arguments are added to QEMU's.
start_qemu() {
	name=$1
	shift
	rm -f $T/ser.in $T/ser.out $T/mon.in $T/mon.out
	mkfifo $T/ser.in $T/ser.out $T/mon.in $T/mon.out
	: >$T/serial.log
	tr -d '\r' <$T/ser.out >>$T/serial.log &
	catpid=$!
	cat $T/mon.out >>$T/mon.log &
	monpid=$!
	# shellcheck disable=SC2086 # QEMU_ARGS is split into words on purpose.
	qemu-system-ppc64 $QEMU_ARGS -append "$APPEND" \
		-serial pipe:$T/ser -monitor pipe:$T/mon \
		-trace kvm_handle_papr_hcall -trace spapr_iommu_new_table -D $T/qemu-trace-$name.log \
		"$@" >$T/qemu-$name.out 2>&1 &
	qpid=$!
}

stop_readers() { kill $catpid $monpid 2>/dev/null; wait $catpid $monpid 2>/dev/null; }

# Waits up to $1 seconds for QEMU to exit, then kills it.
stop_qemu() {
	i=0
	while kill -0 $qpid 2>/dev/null && [ $i -lt $(($1 * 10)) ]; do sleep 0.1; i=$((i + 1)); done
	if kill -0 $qpid 2>/dev/null; then
		echo "    # QEMU $qpid did not exit in $1 s: killed"
		kill -9 $qpid
	fi
	wait $qpid 2>/dev/null
	stop_readers
}

# The disks: 16 MiB each of fixed pseudo-random data, so that the guest's sums are known.
make_disks() {
	dd if=/dev/urandom of=$T/seed bs=1M count=16 2>/dev/null
	cp $T/seed $T/vscsi.img
	dd if=/dev/urandom of=$T/vblk.img bs=1M count=16 2>/dev/null
	want_sda=$(md5sum <$T/vscsi.img | cut -d' ' -f1)
	want_vda=$(md5sum <$T/vblk.img | cut -d' ' -f1)
}

# A boot of the guest that is not measured, before the two that are: the first boot in the
# emulated host also reads QEMU and the guest's files into its page cache, and it would always
# be the first path's (the module's). It runs on KVM's C path and is stopped once the guest is
# up.
warm_up() {
	echo 0 >$PARAMS/takeover
	make_disks
	: >$T/mon.log
	t0=$(now)
	start_qemu warmup
	if wait_for "RG phase1" 240; then
		say "warm_up boot_to_init_s $(echo "$t0 $(now)" | awk '{ printf "%.2f", $2 - $1 }') (not compared)"
	else
		say "warm_up: the guest did not come up; the measured boots follow anyway"
	fi
	kill $qpid 2>/dev/null
	stop_qemu 10
}

# One whole run of the guest on one path: $1 is accel or c, $2 the takeover value.
run_path() {
	p=$1
	echo "$2" >$PARAMS/takeover
	make_disks
	: >$T/mon.log
	t0=$(now)
	start_qemu $p
	if ! wait_for "RG phase1" 240; then
		result 0 "${p}_guest_boots" "no phase1 from the guest; its console:"
		sed 's/^/    # /' $T/serial.log | tail -n 30
		sed 's/^/    # qemu: /' $T/qemu-$p.out | tail -n 10
		stop_qemu 0
		return
	fi
	t1=$(now)
	grep -q "^RG error" $T/serial.log && sed -n 's/^RG error/    # guest error:/p' $T/serial.log
	ginit=$(sed -n 's/^RG init \([0-9.]*\).*/\1/p' $T/serial.log)
	gdev=$(sed -n 's/^RG devices \([0-9.]*\).*/\1/p' $T/serial.log)
	say "$p boot_to_init_s $(echo "$t0 $t1 $ginit" | awk '{ printf "%.2f", $2 - $1 }') guest_devices_at_s $gdev"
	result 1 "${p}_guest_boots"

	# Data: the sums before any write are those of the disks made here; the write read back.
	ok=1
	grep -q "^RG sum before sda $want_sda" $T/serial.log || ok=0
	grep -q "^RG sum before vda $want_vda" $T/serial.log || ok=0
	[ "$(grep -c '^RG writeback before .* ok' $T/serial.log)" = 2 ] || ok=0
	result $ok "${p}_data_intact" "$(grep '^RG sum before\|^RG writeback before' $T/serial.log | tr '\n' ' ')"

	# Throughput per device: the best of three cold reads of the whole disk.
	for d in sda vda; do
		grep "^RG read $d " $T/serial.log | awk -v p=$p -v d=$d '
			{ t = $6 - $5; if (t <= 0) t = 0.01; r = $4 / t / 1048576; if (r > best) best = r; all = all sprintf(" %.1f", r) }
			END { printf "# real_guest: %s read_mib_s %s best %.1f runs%s\n", p, d, best, all }'
	done

	# Who serves QEMU's tables: KVM TCE table files in QEMU, the module's tables in debugfs.
	nfd=0
	for f in /proc/$qpid/fd/*; do
		case "$(readlink $f)" in *kvm-spapr-tce*) nfd=$((nfd + 1)) ;; esac
	done
	tables >$T/tables-$p.txt
	nmod=$(grep -c '^vm ' $T/tables-$p.txt)
	nvm=$(awk '{ print $2 }' $T/tables-$p.txt | sort -u | wc -l)
	vmlck=$(sed -n 's/^VmLck:[ \t]*\([0-9]*\).*/\1/p' /proc/$qpid/status)
	pages=$(awk '{ s += $10 } END { print s + 0 }' $T/tables-$p.txt)
	say "$p tables_in_qemu $nfd module_tables $nmod module_vms $nvm table_pages $pages qemu_vmlck_kb $vmlck qemu_table_rss_kb $(table_rss)"
	sed 's/^/    # table: /' $T/tables-$p.txt
	if [ "$p" = accel ]; then
		[ "$nfd" -ge 3 ] && [ "$nmod" = "$nfd" ] && [ "$nvm" = 1 ] && ok=1 || ok=0
		result $ok "accel_every_table_is_the_module_s" "QEMU holds $nfd TCE tables, the module serves $nmod of $nvm VM(s)"
	else
		[ "$nfd" -ge 3 ] && [ "$nmod" = 0 ] && ok=1 || ok=0
		result $ok "c_every_table_is_kvm_s" "QEMU holds $nfd TCE tables, the module serves $nmod"
	fi

	# The guest's own count of its TCE hypercalls against the module's counters.
	g_put=$(sed -n 's/^RG hcall 32 //p' $T/serial.log)
	g_ind=$(sed -n 's/^RG hcall 316 //p' $T/serial.log)
	g_stf=$(sed -n 's/^RG hcall 312 //p' $T/serial.log)
	g_get=$(sed -n 's/^RG hcall 28 //p' $T/serial.log)
	over=$(sed -n 's/^RG overrun //p' $T/serial.log)
	m=$(awk '{ p += $14; i += $16; s += $18; g += $20 } END { print p + 0, i + 0, s + 0, g + 0 }' $T/tables-$p.txt)
	say "$p guest_hcalls put ${g_put:-0} indirect ${g_ind:-0} stuff ${g_stf:-0} get ${g_get:-0} (trace overrun ${over:-?})"
	say "$p module_hcalls put $(echo $m | cut -d' ' -f1) indirect $(echo $m | cut -d' ' -f2) stuff $(echo $m | cut -d' ' -f3) get $(echo $m | cut -d' ' -f4)"
	if [ "$p" = accel ]; then
		[ "$over" = 0 ] && [ "$m" = "${g_put:-0} ${g_ind:-0} ${g_stf:-0} ${g_get:-0}" ] &&
			[ "$((${g_put:-0} + ${g_ind:-0}))" -gt 0 ] && ok=1 || ok=0
		result $ok "accel_module_counts_match_the_guest" "guest: ${g_put:-0} ${g_ind:-0} ${g_stf:-0} ${g_get:-0}, module: $m"
	fi

	# Migration to a file, then the source quits.
	mon "migrate file:$T/mig-$p.bin"
	i=0
	while [ $i -lt 600 ]; do
		mon "info migrate"
		sleep 0.2
		grep -q "Migration status: completed" $T/mon.log && break
		grep -q "Migration status: failed" $T/mon.log && break
		i=$((i + 1))
	done
	grep -q "Migration status: completed" $T/mon.log && mig=1 || mig=0
	[ $mig = 1 ] || tail -n 20 $T/mon.log | sed 's/^/    # monitor: /'
	say "$p migration_file_kb $(($(wc -c <$T/mig-$p.bin 2>/dev/null || echo 0) / 1024))"
	tables >$T/tables-$p-after-mig.txt
	say "$p table_pages_after_migration $(awk '{ s += $10 } END { print s + 0 }' $T/tables-$p-after-mig.txt) qemu_table_rss_kb_after_migration $(table_rss)"
	mon "quit"
	stop_qemu 30
	left=$(tables | grep -c '^vm ')

	# The guest resumes in a second QEMU and checks its disks again.
	cp $T/serial.log $T/serial-$p-1.log
	: >$T/mon.log
	start_qemu $p-in -incoming file:$T/mig-$p.bin
	# QEMU creates its tables before it loads the guest's state; sample them then.
	want=0
	[ "$p" = accel ] && want=$nmod
	i=0
	while [ $i -lt 300 ]; do
		nin=$(tables | grep -c '^vm ')
		[ "$nin" = "$want" ] && grep -q "Migration status: completed" $T/mon.log && break
		mon "info migrate"
		sleep 0.2
		i=$((i + 1))
	done
	echo go >$T/ser.in
	if wait_for "RG phase2" 120; then
		ok=$mig
		for d in sda vda; do
			mid=$(sed -n "s/^RG sum mid $d //p" $T/serial-$p-1.log)
			grep -q "^RG sum after $d $mid" $T/serial.log || ok=0
		done
		[ "$(grep -c '^RG writeback after .* ok' $T/serial.log)" = 2 ] || ok=0
	else
		ok=0
	fi
	result $ok "${p}_migration_round_trip" "$(grep '^RG sum after\|^RG writeback after' $T/serial.log | tr '\n' ' ')"
	stop_qemu 30

	# No TCE hypercall reached QEMU: opcodes 0x1c, 0x20, 0x138, 0x13c in its trace.
	exits=$(cat $T/qemu-trace-$p.log $T/qemu-trace-$p-in.log |
		grep -ciE 'kvm_handle_papr_hcall 0x(1c|20|138|13c)$')
	newtab=$(grep -c 'spapr_iommu_new_table' $T/qemu-trace-$p.log)
	say "$p tce_exits_to_qemu $exits qemu_new_tables $newtab"
	result $([ "$exits" = 0 ] && echo 1 || echo 0) "${p}_no_tce_hypercall_reaches_qemu" \
		"$(grep -iE 'kvm_handle_papr_hcall' $T/qemu-trace-$p.log | head -n 3 | tr '\n' ' ')"

	# Nothing is left once both QEMUs are gone: no table, no locked memory.
	after=$(tables | grep -c '^vm ')
	if [ "$p" = accel ]; then
		[ "$left" = 0 ] && [ "$nin" = "$nmod" ] && [ "$after" = 0 ] && ok=1 || ok=0
	else
		[ "$after" = 0 ] && ok=1 || ok=0
	fi
	result $ok "${p}_shutdown_leaves_no_table" "tables after the source quit $left, in the restored QEMU $nin, at the end $after"
	rm -f $T/mig-$p.bin
	vfio_run $p
}

# The emulated host's virtio-rng, bound to vfio-pci, passed through to the guest with QEMU's
# -device vfio-pci: QEMU attaches its group to the PHB's tables through the KVM-VFIO device, and
# the hypercalls update the hardware table. A run of its own: a VFIO device blocks migration.
vfio_run() {
	p=$1
	if [ -z "$VFIO_DEV" ]; then
		result 0 "${p}_vfio_device_works" "no device bound to vfio-pci"
		return
	fi
	make_disks
	: >$T/mon.log
	APPEND_SAVED=$APPEND
	APPEND="$APPEND rg.vfio"
	start_qemu $p-vfio -device vfio-pci,host=$VFIO_DEV -trace vfio_spapr_group_attach
	APPEND=$APPEND_SAVED
	ok=0
	if wait_for "RG vfio-done" 240; then
		tables >$T/tables-$p-vfio.txt
		groups=$(awk '{ s += $22 } END { print s + 0 }' $T/tables-$p-vfio.txt)
		nbytes=$(sed -n 's/^RG rng \([0-9]*\) .*/\1/p' $T/serial.log)
		z=$(sed -n 's/^RG rng [0-9]* \([0-9]*\)/\1/p' $T/serial.log)
		att=$(grep -c vfio_spapr_group_attach $T/qemu-trace-$p-vfio.log)
		grep -q "^RG sum vfio sda $want_sda" $T/serial.log &&
			grep -q "^RG sum vfio vda $want_vda" $T/serial.log &&
			[ "$nbytes" = 65536 ] && [ "${z:-0}" -gt 60000 ] && [ "$att" -ge 1 ] && ok=1
		if [ "$p" = accel ]; then
			[ "$groups" -ge 1 ] || ok=0
		fi
		say "$p vfio_rng_bytes ${nbytes:-0} group_attaches $att module_groups $groups"
		sed 's/^/    # table: /' $T/tables-$p-vfio.txt
		echo go >$T/ser.in
	fi
	[ $ok = 1 ] || { tail -n 15 $T/serial.log; tail -n 5 $T/qemu-$p-vfio.out; } | sed 's/^/    # /'
	result $ok "${p}_vfio_device_works" "$(grep '^RG hwrng\|^RG rng' $T/serial.log | tr '\n' ' ')"
	stop_qemu 60
}

echo
# rg.paths= on the kernel command line picks the paths (default: accel c); each has its
# number of results.
PATHS=$(sed -n 's/.*rg\.paths=\([a-z,]*\).*/\1/p' /proc/cmdline | tr ',' ' ')
[ -n "$PATHS" ] || PATHS="accel c"
plan=2
for p in $PATHS; do
	case $p in accel) plan=$((plan + 8)) ;; c) plan=$((plan + 7)) ;; esac
done
echo "KTAP version 1"
echo "1..1"
echo "    KTAP version 1"
echo "    # Subtest: tce_accel_real_guest"
echo "    1..$plan"
# The emulated host's virtio-rng goes to vfio-pci (nothing else in its IOMMU group has a
# driver).
VFIO_DEV=
for d in /sys/bus/pci/devices/*; do
	[ "$(cat $d/vendor 2>/dev/null)" = 0x1af4 ] && [ "$(cat $d/device)" = 0x1044 ] || continue
	echo vfio-pci >$d/driver_override
	echo "${d##*/}" >/sys/bus/pci/drivers_probe
	[ "$(basename "$(readlink $d/driver)")" = vfio-pci ] && VFIO_DEV=${d##*/}
done
say "vfio device: ${VFIO_DEV:-none}"
if insmod /tce_accel.ko; then
	say "module loaded, takeover=$(cat $PARAMS/takeover)"
	# Boot times are compared only when both paths run.
	[ "$(echo $PATHS | wc -w)" -ge 2 ] && warm_up
	for p in $PATHS; do
		case $p in accel) run_path accel 1 ;; c) run_path c 0 ;; esac
	done
	if rmmod tce_accel; then result 1 module_unloads; else result 0 module_unloads "rmmod failed"; fi
else
	echo "    # insmod /tce_accel.ko failed"
fi
if [ -f /sys/kernel/debug/kmemleak ]; then
	echo scan >/sys/kernel/debug/kmemleak
	sleep 6
	echo scan >/sys/kernel/debug/kmemleak
	leaks=$(grep -c 'unreferenced object' /sys/kernel/debug/kmemleak)
	result $([ "$leaks" = 0 ] && echo 1 || echo 0) no_kmemleak_report "kmemleak: $leaks unreferenced objects"
	[ "$leaks" = 0 ] || head -n 40 /sys/kernel/debug/kmemleak | sed 's/^/    # /'
else
	result 1 "no_kmemleak_report # SKIP no kmemleak in this kernel"
fi
if [ $fails = 0 ]; then echo "ok 1 tce_accel_real_guest"; else echo "not ok 1 tce_accel_real_guest"; fi
echo "real-guest: done"
poweroff -f
