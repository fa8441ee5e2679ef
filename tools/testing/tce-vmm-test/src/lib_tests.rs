// SPDX-License-Identifier: GPL-2.0
//! Unit tests of the sample VMM's library (`samples/tce_vmm`): its hypercall encoding, the
//! guest's job layout and guest RAM. They run here, with the other tests of the VMM, so that
//! the sample stays short.

/// `tce_vmm::hcall`.
mod hcall {
    use tce_engine::tce::HcallError;
    use tce_vmm::hcall::*;

    #[test]
    fn calls_round_trip() {
        let calls = [
            Hcall::Get { liobn: 1, ioba: 2 },
            Hcall::Put {
                liobn: 1,
                ioba: 2,
                tce: 3,
            },
            Hcall::Stuff {
                liobn: 1,
                ioba: 2,
                value: 3,
                npages: 4,
            },
            Hcall::Indirect {
                liobn: 1,
                ioba: 2,
                list: 3,
                npages: 4,
            },
        ];
        for c in calls {
            let (nr, args) = c.encode();
            assert_eq!(Hcall::decode(nr, &args), Some(c));
        }
        assert_eq!(Hcall::decode(H_RTAS, &[0; 9]), None);
    }

    #[test]
    fn too_hard_becomes_parameter() {
        assert_eq!(
            Answer::from_result(Err(HcallError::TooHard)).reply(),
            Reply::code(H_PARAMETER)
        );
        assert_eq!(
            Answer::from_result(Err(HcallError::Hardware)).reply(),
            Reply::code(-1)
        );
        assert_eq!(
            Answer::from_result(Ok(Some(5))).reply(),
            Reply::success(Some(5))
        );
        assert_eq!(Answer::UnknownLiobn.reply().r3, H_PARAMETER);
    }

    #[test]
    fn big_stuffs_go_in_chunks() {
        let mut chunks = Vec::new();
        let n = 2 * STUFF_NONZERO_MAX + 5;
        let r = stuff_in_chunks(
            12,
            0x1000,
            n,
            |_, _| true,
            |ioba, k| {
                chunks.push((ioba, k));
                Ok(())
            },
        );
        assert_eq!(r, Ok(()));
        assert_eq!(
            chunks,
            [
                (0x1000, STUFF_NONZERO_MAX),
                (0x1000 + (STUFF_NONZERO_MAX << 12), STUFF_NONZERO_MAX),
                (0x1000 + ((2 * STUFF_NONZERO_MAX) << 12), 5)
            ]
        );
        let r = stuff_in_chunks(12, 0, n, |_, _| false, |_, _| unreachable!());
        assert_eq!(r, Err(HcallError::Parameter));
        assert!(is_big_stuff(0x1000, STUFF_NONZERO_MAX + 1));
        assert!(!is_big_stuff(0, u64::MAX));
        assert!(!is_big_stuff(0x1000, STUFF_NONZERO_MAX));
    }
}

/// `tce_vmm::guest`.
mod guest {
    use tce_vmm::guest::*;
    use tce_vmm::hcall::Hcall;
    use tce_vmm::memory::{
        GuestAddress,
        GuestRam, //
    };

    #[test]
    fn a_job_is_laid_out_as_the_payload_reads_it() {
        let ram = GuestRam::new(RAM_SIZE as usize).unwrap();
        let mut job = Job::default();
        job.push(Hcall::Put {
            liobn: 7,
            ioba: 0x1000,
            tce: 0x2003,
        });
        job.lists.insert(list_page(3), vec![0x1003, 0x2003]);
        let desc = job.store(&ram, 1, H_JOB_DONE).unwrap();
        let mut head = [0u64; 4];
        ram.read_le64(desc, &mut head).unwrap();
        assert_eq!(head[0], 1);
        assert_eq!(head[3], H_JOB_DONE);
        let mut call = [0u64; 6];
        ram.read_le64(GuestAddress(head[1]), &mut call).unwrap();
        assert_eq!(call, [0x20, 7, 0x1000, 0x2003, 0, 0]);
        let mut bytes = [0u8; 8];
        ram.read(list_page(3).add(8), &mut bytes).unwrap();
        assert_eq!(u64::from_be_bytes(bytes), 0x2003);
        // The guest's stores, as the payload makes them.
        ram.write_le64(GuestAddress(head[2]), &[0, 0x55, 12, 0])
            .unwrap();
        let r = job.results(&ram, 1).unwrap();
        assert_eq!(
            r,
            [CallResult {
                r3: 0,
                r4: 0x55,
                ticks: 12
            }]
        );
        const { assert!(MAX_CALLS >= 50_000) };
    }
}

/// `tce_vmm::memory`.
mod memory {
    use tce_engine::env::{
        GuestFault,
        GuestMemory, //
    };
    use tce_vmm::memory::*;

    #[test]
    fn reads_and_writes_stay_inside_ram() {
        let ram = GuestRam::new(1 << 16).unwrap();
        ram.write_be64(GuestAddress(0x1000), &[0x0102_0304_0506_0708, 3])
            .unwrap();
        let mut list = [0u64; 2];
        ram.read_be64(0x1000, &mut list).unwrap();
        assert_eq!(list, [0x0102_0304_0506_0708, 3]);
        let mut le = [0u64; 1];
        ram.read_le64(GuestAddress(0x1000), &mut le).unwrap();
        assert_eq!(le[0], 0x0807_0605_0403_0201);
        assert_eq!(ram.gpa_to_ua(0xffff), Some(ram.host_addr() + 0xffff));
        assert_eq!(ram.gpa_to_ua(0x10000), None);
        assert_eq!(ram.read_be64(0xfff8, &mut list), Err(GuestFault));
        assert_eq!(ram.write(GuestAddress(u64::MAX), &[1]), Err(OutsideRam));
    }
}
