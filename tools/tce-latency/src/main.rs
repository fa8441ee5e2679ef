// SPDX-License-Identifier: GPL-2.0

//! `tce-latency`: prints the three-path latency table of a `tce-vmm-test bench` run and saves it as
//! JSON and SVG.
//!
//! ```text
//! tce-latency INPUT [--cost COST.txt] [--json OUT.json] [--svg OUT.svg]
//! ```
//!
//! INPUT is a console log of the emulated POWER host (the benchmark's `TCE_VMM_JSON` line is
//! found in it) or the JSON itself. Exit status 1 if INPUT holds no valid report.

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: tce-latency INPUT [--cost COST.txt] [--json OUT.json] [--svg OUT.svg]

INPUT is the console log of a run of `tce-vmm-test bench` in the emulated POWER host (for example
~/.cache/tce-accel/build-ppc64le/tce-test-ppc64le.log) or its JSON. Prints the latency of each
TCE hypercall on the three paths side by side; --cost adds the deterministic per-call cost
that the tce_cost QEMU plugin counted in the same run (instructions, cache lines, pages);
--json saves the report (with the cost) as pretty JSON, --svg draws the latencies.";

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (mut input, mut json, mut svg, mut cost) = (None, None, None, None);
    while let Some(a) = args.next() {
        match a.to_str() {
            Some("--json") => json = args.next().map(PathBuf::from),
            Some("--svg") => svg = args.next().map(PathBuf::from),
            Some("--cost") => cost = args.next().map(PathBuf::from),
            Some("-h" | "--help") => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ if input.is_none() => input = Some(PathBuf::from(a)),
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(input) = input else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(&input) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("tce-latency: cannot read {}: {e}", input.display());
            return ExitCode::FAILURE;
        }
    };
    let mut rep = match tce_latency::find(&text) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tce-latency: {}: {e}", input.display());
            return ExitCode::FAILURE;
        }
    };
    print!("{}", tce_latency::table(&rep));
    if let Some(path) = cost {
        let jobs = match std::fs::read_to_string(&path) {
            Ok(t) => tce_latency::cost::parse(&t),
            Err(e) => {
                eprintln!("tce-latency: cannot read {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        };
        println!();
        print!("{}", tce_latency::cost::table(&rep, &jobs));
        let c = tce_latency::cost::json(&rep, &jobs);
        if let Some(obj) = rep.doc.as_object_mut() {
            obj.insert("cost".into(), c);
        }
    }
    let outputs = [
        (
            json,
            serde_json::to_string_pretty(&rep.doc).map(|s| s + "\n"),
        ),
        (svg, Ok(tce_latency::svg(&rep))),
    ];
    for (path, body) in outputs {
        let Some(path) = path else { continue };
        let written = body
            .map_err(|e| e.to_string())
            .and_then(|b| std::fs::write(&path, b).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("tce-latency: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {}", path.display());
    }
    ExitCode::SUCCESS
}
