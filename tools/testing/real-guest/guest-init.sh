#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# /init of the real guest (L2): a Debian 6.1 pseries kernel with busybox, run by Debian's QEMU
# inside the emulated POWER host. Its drivers DMA through TCE hypercalls: ibmvscsi (the VIO
# LIOBN) and virtio-blk-pci with iommu_platform=on (the PHB's default window, and a Dynamic DMA
# Window the kernel creates at boot). It checks the data on both disks, times reads, counts its
# own TCE hypercalls (the powerpc:hcall_exit tracepoint, enabled from the kernel command line),
# and prints every result on the console as "RG <what> ..." lines for the host's script
# (host-init.sh). Then it waits for "go" on the console, which the host sends after migrating the
# guest, checks that the disks still read as they did before the migration, writes and reads
# back again, and powers off.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
echo "RG init $(cut -d' ' -f1 /proc/uptime)"

for m in $(cat /modules.order); do
	insmod "/modules/$m" || echo "RG error insmod $m"
done

wait_dev() {
	i=0
	while [ ! -b "$1" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	[ -b "$1" ] || echo "RG error no $1"
}
# Reads every byte of both disks and prints their sums; the host knows what they must be.
sums() {
	echo 3 >/proc/sys/vm/drop_caches
	for d in sda vda; do
		echo "RG sum $1 $d $(md5sum </dev/$d | cut -d' ' -f1)"
	done
}

# The short run with the emulated host's virtio-rng passed through (rg.vfio on the command
# line): random bytes through the device's DMA, which the host's IOMMU translates with the
# entries the guest's hypercalls put there; then the sums, and power off.
if grep -q rg.vfio /proc/cmdline; then
	wait_dev /dev/hwrng
	echo "RG hwrng $(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)"
	n=$(dd if=/dev/hwrng bs=4096 count=16 2>/dev/null | wc -c)
	z=$(dd if=/dev/hwrng bs=4096 count=16 2>/dev/null | tr -d '\000' | wc -c)
	echo "RG rng $n $z"
	wait_dev /dev/sda
	wait_dev /dev/vda
	sums vfio
	# The host samples the tables while the device is still in use.
	echo "RG vfio-done"
	read -r go </dev/hvc0
	sync
	poweroff -f
fi

wait_dev /dev/sda
wait_dev /dev/vda
echo "RG devices $(cut -d' ' -f1 /proc/uptime)"

# Writes 2 MiB at 4 MiB into each disk, drops the caches and reads it back.
write_back() {
	for d in sda vda; do
		dd if=/dev/urandom of=/tmp/pat bs=1M count=2 2>/dev/null
		want=$(md5sum </tmp/pat | cut -d' ' -f1)
		dd if=/tmp/pat of=/dev/$d bs=1M seek=4 conv=fsync 2>/dev/null
		echo 3 >/proc/sys/vm/drop_caches
		got=$(dd if=/dev/$d bs=1M skip=4 count=2 2>/dev/null | md5sum | cut -d' ' -f1)
		if [ "$want" = "$got" ]; then echo "RG writeback $1 $d ok"; else echo "RG writeback $1 $d bad"; fi
	done
}

# Reads each whole disk three times with cold caches: bytes and centiseconds per read.
throughput() {
	for d in sda vda; do
		for r in 1 2 3; do
			echo 3 >/proc/sys/vm/drop_caches
			t0=$(cut -d' ' -f1 /proc/uptime)
			n=$(dd if=/dev/$d bs=1M 2>/dev/null | wc -c)
			t1=$(cut -d' ' -f1 /proc/uptime)
			echo "RG read $d $n $t0 $t1"
		done
	done
}

# The guest's own count of its TCE hypercalls since boot, by opcode.
hcalls() {
	t=/sys/kernel/tracing
	[ -r $t/trace ] || { echo "RG error no tracefs"; return; }
	over=$(sed -n 's/^overrun: //p' $t/per_cpu/cpu0/stats)
	# opcode= is decimal: 28 H_GET_TCE, 32 H_PUT_TCE, 312 H_STUFF_TCE, 316 H_PUT_TCE_INDIRECT.
	sed -n 's/.*hcall_exit: opcode=\([0-9]*\) .*/\1/p' $t/trace | sort | uniq -c |
		while read -r n op; do
			case $op in
			28 | 32 | 312 | 316) echo "RG hcall $op $n" ;;
			esac
		done
	echo "RG overrun ${over:-unknown}"
}

sync
sums before
write_back before
sums mid
throughput
sync
hcalls
# The tables are sampled by the host while the guest waits here.
echo "RG phase1 $(cut -d' ' -f1 /proc/uptime)"
read -r go </dev/hvc0
echo "RG resumed $go"
sums after
write_back after
echo "RG phase2"
sync
poweroff -f
