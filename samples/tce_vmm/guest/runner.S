# SPDX-License-Identifier: GPL-2.0
#
# The guest payload of tce-vmm: runs one job of hypercalls and reports to the VMM.
#
# It runs in real mode (MSR = SF | LE), loaded at guest physical address 0. The VMM starts
# each vCPU at 0x100 with r31 holding the guest physical address of a job descriptor, all
# values little-endian u64:
#
#   +0   number of calls
#   +8   address of the calls: 48 bytes each, hcall number, r4, r5, r6, r7, reserved
#   +16  address of the results: 32 bytes each, r3, r4, timebase ticks, reserved
#   +24  the hypercall number that ends the job (0xe000, which always exits to the VMM)
#
# For each call the guest loads r3..r7, reads the timebase, issues `sc 1`, reads the
# timebase again and stores r3, r4 and the difference. Then it issues the ending hypercall
# and, if resumed, issues it again. Registers r25..r31 survive hypercalls (PAPR).
#
# Every interrupt vector from 0x200 to 0xfe0 holds a stub that reports the interrupt with
# hypercall 0xe008: r4 = vector + 12, r5 = SRR0, r6 = SRR1. A guest that goes wrong thus
# stops with a message instead of looping in zeroed memory.
#
# The private hypercall numbers (0xe000 and up) are above MAX_HCALL_OPCODE and used by
# nobody: KVM-HV answers no such number itself, so each one exits to the VMM. (The range
# 0xf800 to 0xf80c is taken by the nested-virtualization calls, which KVM-HV answers.)

	.machine	power9
	.text

	.org	0x100
	b	run_job

	.org	0x200
	.rept	(0x1000 - 0x200) / 0x20
	mfsrr0	r5
	mfsrr1	r6
	bl	1f
1:	mflr	r4
	li	r3, 0
	ori	r3, r3, 0xe008
	sc	1
	b	.
	.endr

run_job:
	ld	r28, 0(r31)		# calls left
	ld	r29, 8(r31)		# next call
	ld	r30, 16(r31)		# next result
	cmpdi	r28, 0
	beq	.Lend
.Lcall:
	ld	r3, 0(r29)
	ld	r4, 8(r29)
	ld	r5, 16(r29)
	ld	r6, 24(r29)
	ld	r7, 32(r29)
	mfspr	r26, 268		# timebase before
	sc	1
	mfspr	r25, 268		# timebase after
	subf	r25, r26, r25
	std	r3, 0(r30)
	std	r4, 8(r30)
	std	r25, 16(r30)
	addi	r29, r29, 48
	addi	r30, r30, 32
	addi	r28, r28, -1
	cmpdi	r28, 0
	bne	.Lcall
.Lend:
	ld	r3, 24(r31)		# the job is done
	sc	1
	b	.Lend
