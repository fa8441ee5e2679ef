// SPDX-License-Identifier: GPL-2.0
//! The `bench` command: window creation time and memory, and the size of a sparse migration.

use std::fs;
use std::time::Instant;

use serde_json::{
    json,
    Value, //
};
use tce_ddw_model::{
    PhbDesc,
    RtasCall,
    RtasStatus, //
};
use tce_model::host::SimHost;
use tce_shim::kernel::{
    create_vm_of_type,
    device_present,
    take_fd,
    DEVICE_PATH, //
};
use tce_shim::{
    saved,
    Error,
    KernelTables,
    SavedTable,
    Shim,
    SimTables,
    Table,
    Tables, //
};

use crate::alloc;
use crate::cli::BenchArgs;
use crate::tables::bytes;
use crate::{
    chain,
    Failure,
    Outcome, //
};

/// The PHB the benchmark's windows are created on.
const BUID: u64 = 0x0800_0000_2000_0000;
/// Its LIOBN base.
const LIOBN: u32 = 0x8000_0000;
/// The LIOBN that restored tables get.
const RESTORED_LIOBN: u64 = 0x7fff_0001;
/// The IOMMU page shift of every window.
const PAGE_SHIFT: u32 = 12;
/// log2 of the window sizes measured.
const SIZES: [u32; 4] = [4, 16, 24, 31];
/// log2 of the migrated window's size.
const MIGRATED: u32 = 31;

/// Returns the median, minimum and maximum of some durations in nanoseconds.
fn stats(mut ns: Vec<u64>) -> (u64, u64, u64) {
    ns.sort_unstable();
    let median = ns[ns.len() / 2];
    (median, ns[0], ns[ns.len() - 1])
}

/// Formats nanoseconds with a readable unit.
fn time(ns: u64) -> String {
    match ns {
        0..=999 => format!("{ns} ns"),
        1_000..=999_999 => format!("{:.1} us", ns as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", ns as f64 / 1e9),
    }
}

/// A deterministic generator of entry indices and TCEs.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 11
    }
}

/// Creates a window of `2^log2` entries through RTAS and returns its LIOBN.
fn create_window<T: Tables>(shim: &mut Shim<T>, log2: u32) -> Result<u32, Error> {
    let args = [
        0,
        (BUID >> 32) as u32,
        BUID as u32,
        PAGE_SHIFT,
        PAGE_SHIFT + log2,
    ];
    let mut rets = [0u32; 4];
    match shim.call(RtasCall::Create, &args, &mut rets) {
        RtasStatus::Success => Ok(rets[1]),
        _ => Err(shim.take_backend_error().unwrap_or(Error::Phb {
            buid: BUID,
            reason: "it refused to create the window",
        })),
    }
}

/// Removes a window through RTAS.
fn remove_window<T: Tables>(shim: &mut Shim<T>, liobn: u32) {
    let mut rets = [0u32; 1];
    shim.call(RtasCall::Remove, &[liobn], &mut rets);
}

/// Times the creation of a `2^log2`-entry window `runs` times and measures its memory.
fn creation<T: Tables>(shim: &mut Shim<T>, backend: &str, log2: u32, runs: u32) -> Value {
    let mut times = Vec::new();
    let mut row = json!({
        "backend": backend,
        "entries": 1u64 << log2,
        "entries_log2": log2,
        "page_shift": PAGE_SHIFT,
    });
    for run in 0..runs {
        let heap_before = alloc::in_use();
        let start = Instant::now();
        let created = create_window(shim, log2);
        let elapsed = start.elapsed().as_nanos() as u64;
        let heap = alloc::in_use().saturating_sub(heap_before);
        let liobn = match created {
            Ok(liobn) => liobn,
            Err(e) => {
                row["error"] = json!(chain(&e));
                return row;
            }
        };
        times.push(elapsed);
        if run == 0 {
            let info = shim.table(liobn).and_then(|t| t.info());
            match info {
                Ok(info) => {
                    row["user_heap_bytes"] = json!(heap);
                    row["present_pages"] = json!(info.present_pages);
                    row["locked_pages"] = json!(info.locked_pages);
                    row["host_page_size"] = json!(info.host_page_size);
                }
                Err(e) => row["error"] = json!(chain(&e)),
            }
        }
        remove_window(shim, liobn);
    }
    let (median, min, max) = stats(times);
    row["median_ns"] = json!(median);
    row["min_ns"] = json!(min);
    row["max_ns"] = json!(max);
    row
}

/// Saves a 2^31-entry window with `mapped` entries and restores it into `dst`, `runs` times each.
fn migration<T: Tables, U: Tables>(
    shim: &mut Shim<T>,
    dst: &mut U,
    backend: &str,
    mapped: u32,
    runs: u32,
) -> Result<Value, Error> {
    let liobn = create_window(shim, MIGRATED)?;
    let table = shim.table(liobn)?;
    let size = 1u64 << MIGRATED;
    let mut rng = Lcg(0x7ce_acce1);
    for _ in 0..mapped {
        let index = rng.next() % size;
        table.write(index, ((rng.next() << PAGE_SHIFT) & !(1 << 63)) | 3)?;
    }
    let present = table.info()?.present_pages;
    let mut save_times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        let result = saved::save_with_stats(&table)?;
        save_times.push(start.elapsed().as_nanos() as u64);
        last = Some(result);
    }
    let Some((saved_table, stats_)) = last else {
        return Err(Error::NoWindow {
            liobn: liobn.into(),
        });
    };
    let encoded = saved_table.to_bytes();
    let loaded = SavedTable::from_bytes(&encoded)?;
    let mut restore_times = Vec::new();
    let mut restored_pages = 0;
    for run in 0..runs {
        let start = Instant::now();
        let restored = saved::restore_as(dst, &loaded, RESTORED_LIOBN)?;
        restore_times.push(start.elapsed().as_nanos() as u64);
        if run == 0 {
            restored_pages = restored.info()?.present_pages;
            let again = saved::save(&restored)?;
            if again.entries() != saved_table.entries() {
                return Err(Error::WindowMismatch {
                    liobn: RESTORED_LIOBN,
                    have: format!("{} entries", again.entries().len()),
                    saved: format!("{} entries", saved_table.entries().len()),
                });
            }
        }
        drop(restored);
        dst.remove(RESTORED_LIOBN)?;
    }
    drop(table);
    remove_window(shim, liobn);
    let (save_median, _, _) = stats(save_times);
    let (restore_median, _, _) = stats(restore_times);
    let dense = saved_table.dense_bytes();
    Ok(json!({
        "backend": backend,
        "entries": size,
        "mapped_writes": mapped,
        "saved_entries": saved_table.entries().len(),
        "saved_bytes": encoded.len(),
        "dense_bytes": dense,
        "dense_over_saved": dense as f64 / encoded.len() as f64,
        "pages_present": present,
        "pages_read": stats_.pages_read,
        "pages_after_restore": restored_pages,
        "save_median_ns": save_median,
        "restore_median_ns": restore_median,
    }))
}

/// Runs every measurement on one backend.
fn bench_backend<T: Tables, U: Tables>(
    tables: T,
    mut dst: U,
    backend: &str,
    args: &BenchArgs,
    creation_rows: &mut Vec<Value>,
    migration_rows: &mut Vec<Value>,
) -> Result<(), Error> {
    let mut shim = Shim::with_phbs(tables, &[PhbDesc::simulator_default(BUID, LIOBN)])?;
    // One unmeasured creation warms the allocator and the code paths.
    let liobn = create_window(&mut shim, 4)?;
    remove_window(&mut shim, liobn);
    for log2 in SIZES {
        creation_rows.push(creation(&mut shim, backend, log2, args.runs));
    }
    match migration(&mut shim, &mut dst, backend, args.mapped, args.runs) {
        Ok(row) => migration_rows.push(row),
        Err(e) => migration_rows.push(json!({ "backend": backend, "error": chain(&e) })),
    }
    Ok(())
}

/// Opens the kernel backend twice (source and destination of the migration), or says why not.
fn kernel_backends(args: &BenchArgs) -> Result<(KernelTables, KernelTables), String> {
    if args.no_kernel {
        return Err("skipped (--no-kernel)".into());
    }
    if !device_present() {
        return Err(format!(
            "skipped ({DEVICE_PATH} does not exist on this host)"
        ));
    }
    let vm = match (args.vm_pid, args.vm_fd) {
        (Some(pid), Some(fd)) => take_fd(pid, fd),
        _ => create_vm_of_type(args.vm_type),
    }
    .map_err(|e| chain(&e))?;
    let vm2 = vm.try_clone().map_err(|e| e.to_string())?;
    let src = KernelTables::open(vm).map_err(|e| chain(&e))?;
    let dst = KernelTables::open(vm2).map_err(|e| chain(&e))?;
    Ok((src, dst))
}

/// Prints the window-creation table.
fn print_creation(rows: &[Value], runs: u32) {
    println!(
        "Window creation: ibm,create-pe-dma-window with 4 KiB IOMMU pages, median of {runs} runs"
    );
    println!(
        "{:<8} {:>8} {:>11} {:>23} {:>12} {:>12} {:>24}",
        "backend",
        "entries",
        "median",
        "min..max",
        "user heap",
        "table pages",
        "locked-memory charge"
    );
    for r in rows {
        let backend = r["backend"].as_str().unwrap_or("?");
        let log2 = r["entries_log2"].as_u64().unwrap_or(0);
        if let Some(e) = r["error"].as_str() {
            println!("{backend:<8} {:>8} failed: {e}", format!("2^{log2}"));
            continue;
        }
        let n = |k: &str| r[k].as_u64().unwrap_or(0);
        let charge = n("locked_pages") * n("host_page_size");
        println!(
            "{:<8} {:>8} {:>11} {:>23} {:>12} {:>12} {:>24}",
            backend,
            format!("2^{log2}"),
            time(n("median_ns")),
            format!("{}..{}", time(n("min_ns")), time(n("max_ns"))),
            format!("{} B", n("user_heap_bytes")),
            n("present_pages"),
            format!("{} pages, {}", n("locked_pages"), human(charge)),
        );
    }
}

/// Formats a byte count with a rounded binary unit.
fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Prints the migration table.
fn print_migration(rows: &[Value], mapped: u32) {
    println!();
    println!(
        "Sparse migration: a 2^{MIGRATED}-entry window of 4 KiB pages with {mapped} mapped entries"
    );
    println!(
        "{:<8} {:>12} {:>12} {:>10} {:>11} {:>12} {:>12} {:>14}",
        "backend",
        "saved",
        "dense copy",
        "ratio",
        "pages read",
        "save",
        "restore",
        "pages restored"
    );
    for r in rows {
        let backend = r["backend"].as_str().unwrap_or("?");
        if let Some(e) = r["error"].as_str() {
            println!("{backend:<8} failed: {e}");
            continue;
        }
        let n = |k: &str| r[k].as_u64().unwrap_or(0);
        println!(
            "{:<8} {:>12} {:>12} {:>10} {:>11} {:>12} {:>12} {:>14}",
            backend,
            format!("{} B", n("saved_bytes")),
            bytes(n("dense_bytes")),
            format!("1:{:.0}", r["dense_over_saved"].as_f64().unwrap_or(0.0)),
            n("pages_read"),
            time(n("save_median_ns")),
            time(n("restore_median_ns")),
            n("pages_after_restore"),
        );
    }
}

/// `tce-ddw bench`.
pub fn run(args: BenchArgs) -> Outcome {
    let mut creation_rows = Vec::new();
    let mut migration_rows = Vec::new();
    let mut skipped = serde_json::Map::new();
    let sim = || SimTables::new(SimHost::new(args.host_page_shift));
    bench_backend(
        sim(),
        sim(),
        "sim",
        &args,
        &mut creation_rows,
        &mut migration_rows,
    )?;
    match kernel_backends(&args) {
        Ok((src, dst)) => {
            if let Err(e) = bench_backend(
                src,
                dst,
                "kernel",
                &args,
                &mut creation_rows,
                &mut migration_rows,
            ) {
                skipped.insert("kernel".into(), json!(format!("failed: {}", chain(&e))));
            }
        }
        Err(why) => {
            skipped.insert("kernel".into(), json!(why));
        }
    }
    print_creation(&creation_rows, args.runs);
    print_migration(&migration_rows, args.mapped);
    for (backend, why) in &skipped {
        println!("{backend} backend: {}", why.as_str().unwrap_or(""));
    }
    if let Some(path) = &args.json {
        let report = json!({
            "tool": "tce-ddw bench",
            "runs": args.runs,
            "sim_host_page_shift": args.host_page_shift,
            "window_creation": creation_rows,
            "sparse_migration": migration_rows,
            "skipped": skipped,
        });
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        fs::write(path, text + "\n").map_err(|source| {
            Failure::from(Error::WriteFile {
                path: path.clone(),
                source,
            })
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_the_middle_run() {
        assert_eq!(stats(vec![30, 10, 20]), (20, 10, 30));
        assert_eq!(stats(vec![5]), (5, 5, 5));
        assert_eq!(stats(vec![4, 1, 3, 2]), (3, 1, 4));
    }

    #[test]
    fn figures_are_readable() {
        assert_eq!(time(950), "950 ns");
        assert_eq!(time(12_345), "12.3 us");
        assert_eq!(time(25_000_000), "25.0 ms");
        assert_eq!(time(9_650_200), "9.7 ms");
        assert_eq!(time(2_500_000_000), "2.50 s");
        assert_eq!(human(100), "100 B");
        assert_eq!(human(16 << 30), "16.0 GiB");
    }
}
