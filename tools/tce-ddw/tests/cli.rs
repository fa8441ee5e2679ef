// SPDX-License-Identifier: GPL-2.0
//! Tests of the `tce-ddw` command on the simulated backend: RTAS calls, files and error messages.

use std::io::Write;
use std::path::{
    Path,
    PathBuf, //
};
use std::process::{
    Command,
    Output,
    Stdio, //
};

/// Runs tce-ddw with `args` and `stdin`.
fn run_with(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tce-ddw"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn run(args: &[&str]) -> Output {
    run_with(args, "")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// Checks the exit status and returns standard output.
fn ok(o: Output) -> String {
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    stdout(&o)
}

/// A fresh directory for one test's files.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tce-ddw-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const QUERY: [&str; 5] = ["rtas", "query", "0", "0x8000000", "0x20000000"];

#[test]
fn rtas_calls_print_the_return_cells_like_tce_sim() {
    assert_eq!(
        ok(run(&QUERY)),
        "0 0x00000001 0x80000000 0x00000107 0x00000000\n"
    );
    assert_eq!(
        ok(run(&[
            "rtas",
            "--nret",
            "6",
            "query",
            "0",
            "0x8000000",
            "0x20000000"
        ])),
        "0 0x00000001 0x00000000 0x80000000 0x00000107 0x00000000\n"
    );
    let out = ok(run(&[
        "rtas",
        "--windows",
        "create",
        "0",
        "0x8000000",
        "0x20000000",
        "16",
        "40",
    ]));
    assert_eq!(
        out,
        "0 0x80000001 0x08000000 0x00000000\n\
         window 0x80000000: slot 0, 4 KiB pages, bus address 0x0000000000000000, 0x40000 entries (default)\n\
         window 0x80000001: slot 1, 64 KiB pages, bus address 0x0800000000000000, 0x1000000 entries\n"
    );
    // Another PHB.
    assert_eq!(
        ok(run(&[
            "rtas",
            "--buid",
            "0x1234",
            "--liobn-base",
            "0x100",
            "create",
            "0",
            "0",
            "0x1234",
            "12",
            "43"
        ])),
        "0 0x00000101 0x08000000 0x00000000\n"
    );
}

#[test]
fn a_script_runs_a_guest_sequence() {
    let script = "\
# Drop the default window and create a 2^31-entry window in its place.
remove 0x80000000
create 0 0x8000000 0x20000000 12 43
query:6 0 0x8000000 0x20000000
remove 0x80000000
reset 0 0x8000000 0x20000000
";
    let out = ok(run_with(&["rtas", "--windows", "--script", "-"], script));
    assert_eq!(
        out,
        "0\n\
         0 0x80000000 0x00000000 0x00000000\n\
         0 0x00000001 0x00000000 0x80000000 0x00000107 0x00000000\n\
         0\n\
         0\n\
         window 0x80000000: slot 0, 4 KiB pages, bus address 0x0000000000000000, 0x40000 entries (default)\n"
    );
}

#[test]
fn bad_rtas_input_gets_the_guest_status_and_a_note() {
    let o = run(&["rtas", "create", "0", "0x8000000", "0x20000000", "16"]);
    assert_eq!(ok(o.clone()), "-3\n");
    assert!(stderr(&o).contains(
        "tce-ddw: note: ibm,create-pe-dma-window takes 5 argument cells (config address, BUID hi, BUID lo, page shift, window shift), 4 given"
    ));
    let o = run(&["rtas", "--nret", "3", "remove", "0x80000000"]);
    assert_eq!(ok(o.clone()), "-3\n");
    assert!(stderr(&o).contains("returns 1 cells, 3 asked for"));
    for (args, status) in [
        (&["query", "0", "0", "1"][..], "-3"),
        (&["remove", "0x1234"][..], "-3"),
        (
            &["create", "0", "0x8000000", "0x20000000", "13", "40"][..],
            "-3",
        ),
        (
            &["create", "0", "0x8000000", "0x20000000", "16", "15"][..],
            "-3",
        ),
        (
            &["create", "0", "0x8000000", "0x20000000", "12", "44"][..],
            "-3",
        ),
    ] {
        let mut all = vec!["rtas"];
        all.extend_from_slice(args);
        assert_eq!(ok(run(&all)), format!("{status}\n"), "{args:?}");
    }
    // More windows than slots.
    let out = ok(run_with(
        &["rtas", "--script", "-"],
        "create 0 0x8000000 0x20000000 16 40\ncreate 0 0x8000000 0x20000000 16 40\n",
    ));
    assert_eq!(out.lines().nth(1), Some("-1"));
    // A backend failure is a hardware error for the guest and a note for the administrator.
    let o = run(&[
        "rtas",
        "--locked-limit",
        "0x1000000",
        "create",
        "0",
        "0x8000000",
        "0x20000000",
        "12",
        "40",
    ]);
    assert_eq!(ok(o.clone()), "-1\n");
    assert!(
        stderr(&o).contains("tce-ddw: note: the TCE table for LIOBN 0x80000001 does not fit in the locked-memory limit"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn usage_errors_exit_with_status_2() {
    for args in [
        &["rtas", "query", "0", "x", "1"][..],
        &["rtas", "query", "0", "0x100000000", "1"][..],
        &["rtas", "frobnicate"][..],
        &["rtas"][..],
        &["rtas", "--vm-pid", "1", "query"][..],
        &["rtas", "--host-page-shift", "30", "query"][..],
        &["save", "--sim-trace", "x"][..],
        &["bench", "--runs", "0"][..],
        &["dump"][..],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).is_empty());
    }
    let o = run(&["rtas", "query", "0", "0x8000000000"]);
    assert!(stderr(&o).contains("does not fit in a 32-bit RTAS cell"));
    let o = run_with(&["rtas", "--script", "-"], "query 0 0 0\nfrob 1\n");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).starts_with(
        "tce-ddw: -: line 2: `frob` is not a DDW call: use query, create, remove or reset\n"
    ));
    let o = run(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("ibm,create-pe-dma-window"));
}

/// A trace that builds a huge window with a few entries, as tce-sim runs it.
const TRACE: &str = "\
ram 0 0x40000000
phb 0x800000020000000 0x80000000
rtas create 0x0 0x8000000 0x20000000 12 43
put 0x80000001 0x800000000000000 0x10003
put 0x80000001 0x800000400000000 0x20001
put 0x80000001 0x80007fffffff000 0x30002
write64 0x100000 0x40003 0x41003
indirect 0x80000001 0x800000000001000 0x100000 2
";

/// The entry lines of a dump.
fn entries(dump: &str) -> Vec<String> {
    dump.lines()
        .skip_while(|l| *l != "index tce")
        .skip(1)
        .map(String::from)
        .collect()
}

#[test]
fn save_and_restore_round_trip_through_files() {
    let dir = scratch("roundtrip");
    let trace = dir.join("huge.trace");
    std::fs::write(&trace, TRACE).unwrap();
    let src = ["--sim-trace", s(&trace), "--liobn", "0x80000001"];

    let dump = ok(run(&[&["dump"][..], &src].concat()));
    assert!(dump.starts_with(
        "LIOBN        0x80000001\n\
         IOMMU pages  4 KiB (page shift 12)\n\
         bus address  0x0800000000000000 (first entry 0x800000000000)\n\
         entries      0x80000000 (2147483648)\n\
         host pages   3 present of 262144, 64 KiB each;"
    ));
    let expected = [
        "0x0 0x0000000000010003",
        "0x1 0x0000000000040003",
        "0x2 0x0000000000041003",
        "0x400000 0x0000000000020001",
        "0x7fffffff 0x0000000000030002",
    ];
    assert_eq!(entries(&dump), expected);

    let file = dir.join("window.tce");
    let out = ok(run(&[&["save", "-o", s(&file)][..], &src].concat()));
    assert_eq!(
        out,
        format!(
            "saved LIOBN 0x80000001 to {}: 5 entries from 3 host pages, 136 bytes (a dense copy would be 16 GiB)\n",
            file.display()
        )
    );
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 56 + 5 * 16);
    assert_eq!(entries(&ok(run(&["dump", "--saved", s(&file)]))), expected);

    let out = ok(run(&["restore", "-i", s(&file), "--dump"]));
    assert!(out.starts_with(
        "restored 5 entries into a new table for LIOBN 0x80000001 (0x80000000 entries of 4 KiB at bus address 0x800000000000000); 3 host pages allocated\n"
    ));
    assert_eq!(entries(&out), expected);
    // On a host with 4 KiB pages, under another LIOBN.
    let out = ok(run(&[
        "restore",
        "--host-page-shift",
        "12",
        "--liobn",
        "0x42",
        "-i",
        s(&file),
        "--dump",
    ]));
    assert!(out.contains("LIOBN 0x42"));
    assert!(out.contains("3 host pages allocated"));
    assert!(out.contains("host pages   3 present of 4194304, 4 KiB each;"));
    assert_eq!(entries(&out), expected);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn file_and_table_errors_are_sentences() {
    let dir = scratch("errors");
    let trace = dir.join("huge.trace");
    std::fs::write(&trace, TRACE).unwrap();
    let file = dir.join("w.tce");
    ok(run(&[
        "save",
        "--sim-trace",
        s(&trace),
        "--liobn",
        "0x80000001",
        "-o",
        s(&file),
    ]));
    let good = std::fs::read(&file).unwrap();
    let bad = dir.join("bad.tce");
    let cases: [(Vec<u8>, &str); 4] = [
        (
            good[..60].to_vec(),
            "tce-ddw: the saved table is truncated: its entry list needs 80 bytes, but only 4 remain\n",
        ),
        (
            b"#!/bin/sh\n".to_vec(),
            "tce-ddw: this is not a saved TCE table: it does not start with the TCE table magic number\n",
        ),
        (
            {
                let mut b = good.clone();
                b[8] = 9;
                b
            },
            "tce-ddw: the saved table has format version 9, but this tool reads only version 1\n",
        ),
        (
            {
                let mut b = good.clone();
                b.swap(56, 72);
                b
            },
            "tce-ddw: saved entry 0x0 comes after entry 0x1; entries must be in ascending order\n",
        ),
    ];
    for (bytes, message) in cases {
        std::fs::write(&bad, bytes).unwrap();
        for cmd in ["restore", "dump"] {
            let flag = if cmd == "restore" { "-i" } else { "--saved" };
            let o = run(&[cmd, flag, s(&bad)]);
            assert_eq!(o.status.code(), Some(1));
            assert_eq!(stderr(&o), message);
        }
    }
    let missing = dir.join("missing.tce");
    let o = run(&["restore", "-i", s(&missing)]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "tce-ddw: cannot read {}: No such file or directory (os error 2)\n",
            missing.display()
        )
    );
    let o = run(&["dump", "--sim-trace", s(&trace), "--liobn", "7"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("tce-ddw: there is no TCE table for LIOBN 0x7\n"));
    let o = run(&["dump", "--table-pid", "0", "--table-fd", "3"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "tce-ddw: 0 is not a valid process ID\n");
    // A restore into a LIOBN the simulated VM cannot hold: the window is too large for the limit.
    let o = run(&["restore", "--locked-limit", "0x100000", "-i", s(&file)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("does not fit in the locked-memory limit"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_live_vm_without_the_module_is_explained() {
    if Path::new("/dev/tce_accel").exists() || std::fs::File::open("/dev/kvm").is_err() {
        println!("note: skipped, this host has the module or no usable /dev/kvm");
        return;
    }
    // Without the module the shim falls back to KVM's own tables; a host whose KVM has none
    // (any but POWER) gets told what to load.
    let o = run(&[&["rtas", "--new-vm"][..], &QUERY[1..]].concat());
    if o.status.success() {
        println!("note: KVM's own TCE tables answered: {}", stdout(&o));
        return;
    }
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with(
            "tce-ddw: this host cannot create TCE tables: /dev/tce_accel does not exist and \
             the VM has no KVM_CAP_SPAPR_TCE_64; load the tce_accel module (modprobe tce_accel)"
        ),
        "{}",
        stderr(&o)
    );
}

#[test]
fn the_benchmark_measures_and_writes_json() {
    let dir = scratch("bench");
    let json = dir.join("bench.json");
    let out = ok(run(&[
        "bench",
        "--runs",
        "3",
        "--mapped",
        "200",
        "--json",
        s(&json),
    ]));
    assert!(out.contains("Window creation"));
    assert!(out.contains("Sparse migration"));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = v["window_creation"].as_array().unwrap();
    let sim: Vec<&serde_json::Value> = rows.iter().filter(|r| r["backend"] == "sim").collect();
    let sizes: Vec<u64> = sim.iter().map(|r| r["entries"].as_u64().unwrap()).collect();
    assert_eq!(sizes, [1 << 4, 1 << 16, 1 << 24, 1 << 31]);
    for r in &sim {
        assert!(r["median_ns"].as_u64().unwrap() > 0);
        assert!(r["min_ns"].as_u64() <= r["median_ns"].as_u64());
        assert_eq!(
            r["present_pages"], 0,
            "creating a window allocates no table page"
        );
    }
    let m = &v["sparse_migration"][0];
    assert_eq!(m["backend"], "sim");
    assert_eq!(m["dense_bytes"], 1u64 << 34);
    let saved = m["saved_entries"].as_u64().unwrap();
    assert!((195..=200).contains(&saved));
    assert_eq!(m["saved_bytes"].as_u64().unwrap(), 56 + 16 * saved);
    assert_eq!(m["pages_read"], m["pages_present"]);
    assert_eq!(m["pages_after_restore"], m["pages_present"]);
    if !Path::new("/dev/tce_accel").exists() {
        assert!(v["skipped"]["kernel"]
            .as_str()
            .unwrap()
            .contains("does not exist"));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
