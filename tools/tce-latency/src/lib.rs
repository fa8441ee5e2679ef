// SPDX-License-Identifier: GPL-2.0

//! The three-path latency report of `tce-vmm-test bench`: the side-by-side table, and an SVG plot.
//!
//! `tce-vmm-test bench` runs inside the emulated POWER host and prints its figures as one line of
//! JSON after the marker [`JSON_MARKER`]. This crate finds that line in a console log (or reads
//! a JSON file), checks it, and renders it.

use std::fmt::Write as _;

pub mod cost;

use serde_json::Value;

/// The prefix of the benchmark's JSON line in the console log.
pub const JSON_MARKER: &str = "TCE_VMM_JSON ";

/// The paths, in the order they are shown.
pub const PATHS: [&str; 3] = ["accel", "kvm", "user"];

/// What went wrong reading a report.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No line carries the marker.
    #[error("no `{JSON_MARKER}` line: the benchmark did not run or did not finish")]
    NoReport,
    /// The JSON does not parse.
    #[error("the benchmark's JSON does not parse")]
    Json(#[source] serde_json::Error),
    /// A field is missing or has the wrong type.
    #[error("the benchmark's JSON has no valid `{0}`")]
    Field(String),
}

/// One measured row: one hypercall on one path.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The hypercall, e.g. `H_PUT_TCE` or `H_PUT_TCE_INDIRECT(512)`.
    pub hcall: String,
    /// `accel`, `kvm` or `user`.
    pub path: String,
    /// Calls measured.
    pub calls: u64,
    /// Calls that did not return `H_SUCCESS`.
    pub failed: u64,
    /// Exits to the VMM seen while measuring.
    pub exits: u64,
    /// Fastest call, ns.
    pub min_ns: f64,
    /// Median call, ns.
    pub median_ns: f64,
    /// 99th percentile, ns.
    pub p99_ns: f64,
    /// Median call in timebase ticks.
    pub median_ticks: u64,
}

/// A whole benchmark run.
#[derive(Clone, Debug)]
pub struct Report {
    /// The document as the benchmark printed it.
    pub doc: Value,
    /// The rows, in the benchmark's order.
    pub rows: Vec<Row>,
    /// Calls per row.
    pub calls: u64,
    /// The guest timebase frequency.
    pub timebase_hz: u64,
}

/// Finds the last benchmark line in `text` (a console log, or the JSON itself) and parses it.
pub fn find(text: &str) -> Result<Report, Error> {
    let json = text
        .lines()
        .rev()
        .find_map(|l| l.find(JSON_MARKER).map(|i| &l[i + JSON_MARKER.len()..]))
        .or_else(|| {
            let t = text.trim_start();
            t.starts_with('{').then_some(t)
        })
        .ok_or(Error::NoReport)?;
    parse(serde_json::from_str(json.trim()).map_err(Error::Json)?)
}

fn field<'a>(v: &'a Value, name: &str) -> Result<&'a Value, Error> {
    v.get(name).ok_or_else(|| Error::Field(name.into()))
}

fn u64_of(v: &Value, name: &str) -> Result<u64, Error> {
    field(v, name)?
        .as_u64()
        .ok_or_else(|| Error::Field(name.into()))
}

fn f64_of(v: &Value, name: &str) -> Result<f64, Error> {
    field(v, name)?
        .as_f64()
        .filter(|x| x.is_finite() && *x >= 0.0)
        .ok_or_else(|| Error::Field(name.into()))
}

fn str_of(v: &Value, name: &str) -> Result<String, Error> {
    field(v, name)?
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| Error::Field(name.into()))
}

/// Checks and reads a benchmark document.
pub fn parse(doc: Value) -> Result<Report, Error> {
    let rows = field(&doc, "results")?
        .as_array()
        .ok_or_else(|| Error::Field("results".into()))?
        .iter()
        .map(|r| {
            Ok(Row {
                hcall: str_of(r, "hcall")?,
                path: str_of(r, "path")?,
                calls: u64_of(r, "calls")?,
                failed: u64_of(r, "failed")?,
                exits: u64_of(r, "exits")?,
                min_ns: f64_of(r, "min_ns")?,
                median_ns: f64_of(r, "median_ns")?,
                p99_ns: f64_of(r, "p99_ns")?,
                median_ticks: u64_of(r, "median_ticks")?,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    if rows.is_empty() {
        return Err(Error::Field("results".into()));
    }
    Ok(Report {
        calls: u64_of(&doc, "calls")?,
        timebase_hz: u64_of(&doc, "timebase_hz")?,
        rows,
        doc,
    })
}

impl Report {
    /// The hypercalls, in the order the benchmark measured them.
    pub fn hcalls(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for r in &self.rows {
            if !out.contains(&r.hcall.as_str()) {
                out.push(&r.hcall);
            }
        }
        out
    }

    /// The row of `hcall` on `path`.
    pub fn row(&self, hcall: &str, path: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.hcall == hcall && r.path == path)
    }

    /// The median of `hcall` on path `a` over the one on path `b`.
    pub fn ratio(&self, hcall: &str, a: &str, b: &str) -> Option<f64> {
        let (a, b) = (self.row(hcall, a)?, self.row(hcall, b)?);
        (b.median_ns > 0.0).then(|| a.median_ns / b.median_ns)
    }
}

/// A duration in ns, in the unit that suits it.
pub fn human_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} us", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn cell(r: Option<&Row>) -> String {
    match r {
        Some(r) => format!("{} ({})", human_ns(r.median_ns), human_ns(r.p99_ns)),
        None => "-".into(),
    }
}

fn ratio_cell(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{x:.2}"))
}

/// The three paths side by side: median (p99) per hypercall, the ratios of medians, and the
/// exits to user space each path took.
pub fn table(rep: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Per-call latency, median (p99), {} calls per cell, guest timebase {} MHz",
        rep.calls,
        rep.timebase_hz / 1_000_000
    );
    let _ = writeln!(
        s,
        "{:<26} {:>22} {:>22} {:>22} {:>10} {:>11}",
        "hypercall",
        "accel (tce_accel)",
        "kvm (stock C path)",
        "user (exit to VMM)",
        "accel/kvm",
        "user/accel"
    );
    for h in rep.hcalls() {
        let _ = writeln!(
            s,
            "{:<26} {:>22} {:>22} {:>22} {:>10} {:>11}",
            h,
            cell(rep.row(h, "accel")),
            cell(rep.row(h, "kvm")),
            cell(rep.row(h, "user")),
            ratio_cell(rep.ratio(h, "accel", "kvm")),
            ratio_cell(rep.ratio(h, "user", "accel")),
        );
    }
    let exits: Vec<String> = PATHS
        .iter()
        .map(|p| {
            let (n, calls) = rep
                .rows
                .iter()
                .filter(|r| r.path == *p)
                .fold((0, 0), |(n, c), r| (n + r.exits, c + r.calls));
            format!("{p} {n} of {calls}")
        })
        .collect();
    let _ = writeln!(s, "exits to the VMM: {}", exits.join(", "));
    let failed: u64 = rep.rows.iter().map(|r| r.failed).sum();
    let _ = writeln!(s, "calls that did not return H_SUCCESS: {failed}");
    s
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The report as an SVG bar chart: per hypercall one bar per path (the median) with a whisker
/// from min to p99, on a logarithmic time axis.
pub fn svg(rep: &Report) -> String {
    const W: f64 = 960.0;
    const H: f64 = 480.0;
    const LEFT: f64 = 80.0;
    const RIGHT: f64 = 20.0;
    const TOP: f64 = 70.0;
    const BOTTOM: f64 = 90.0;
    const COLORS: [&str; 3] = ["#1f77b4", "#8c8c8c", "#d95f02"];
    let hcalls = rep.hcalls();
    let lo = rep
        .rows
        .iter()
        .map(|r| r.min_ns.max(1.0))
        .fold(f64::INFINITY, f64::min);
    let hi = rep
        .rows
        .iter()
        .map(|r| r.p99_ns.max(r.median_ns).max(1.0))
        .fold(1.0, f64::max);
    let (dlo, dhi) = (
        lo.log10().floor(),
        hi.log10().ceil().max(lo.log10().floor() + 1.0),
    );
    let plot_h = H - TOP - BOTTOM;
    let y = |ns: f64| TOP + plot_h * (1.0 - (ns.max(1.0).log10() - dlo) / (dhi - dlo));
    let group_w = (W - LEFT - RIGHT) / hcalls.len().max(1) as f64;
    let bar_w = group_w / 4.5;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="24" font-size="16" text-anchor="middle">TCE hypercall latency per call: tce_accel vs the stock C path vs an exit to the VMM</text>"#,
        W / 2.0
    );
    let _ = writeln!(
        s,
        r##"<text x="{}" y="44" text-anchor="middle" fill="#444">bar: median, whisker: min to p99, {} calls each; emulated POWER9 host (QEMU TCG, nested KVM-HV): compare ratios, not absolute times</text>"##,
        W / 2.0,
        rep.calls
    );
    // Decades of the log axis, with grid lines.
    let mut d = dlo;
    while d <= dhi + 1e-9 {
        let ns = 10f64.powf(d);
        let yy = y(ns);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            human_ns(ns)
        );
        d += 1.0;
    }
    let _ = writeln!(
        s,
        r##"<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{}" stroke="#000"/>"##,
        H - BOTTOM
    );
    for (g, h) in hcalls.iter().enumerate() {
        let gx = LEFT + group_w * g as f64;
        for (p, path) in PATHS.iter().enumerate() {
            let Some(r) = rep.row(h, path) else {
                continue;
            };
            let x = gx + group_w / 2.0 + (p as f64 - 1.5) * bar_w;
            let top = y(r.median_ns);
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{} {}: median {}, min {}, p99 {}</title></rect>"#,
                bar_w * 0.9,
                (H - BOTTOM - top).max(0.0),
                COLORS[p],
                xml_escape(h),
                path,
                human_ns(r.median_ns),
                human_ns(r.min_ns),
                human_ns(r.p99_ns)
            );
            let cx = x + bar_w * 0.45;
            let _ = writeln!(
                s,
                r##"<line x1="{cx:.1}" x2="{cx:.1}" y1="{:.1}" y2="{:.1}" stroke="#000"/>"##,
                y(r.min_ns),
                y(r.p99_ns)
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            gx + group_w / 2.0,
            H - BOTTOM + 18.0,
            xml_escape(h)
        );
        if let Some(x) = rep.ratio(h, "accel", "kvm") {
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#444">accel/kvm {x:.2}</text>"##,
                gx + group_w / 2.0,
                H - BOTTOM + 34.0
            );
        }
    }
    let labels = [
        "accel: tce_accel.ko",
        "kvm: KVM_CREATE_SPAPR_TCE_64 (C)",
        "user: exit to the VMM",
    ];
    for (p, label) in labels.iter().enumerate() {
        let x = LEFT + 20.0 + 260.0 * p as f64;
        let yy = H - 24.0;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="{}" width="14" height="14" fill="{}"/><text x="{}" y="{yy}">{label}</text>"#,
            yy - 11.0,
            COLORS[p],
            x + 20.0
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> String {
        let rows = [
            ("H_PUT_TCE", "accel", 900.0, 1000.0, 1500.0),
            ("H_PUT_TCE", "kvm", 950.0, 1100.0, 1600.0),
            ("H_PUT_TCE", "user", 9000.0, 10000.0, 20000.0),
            ("H_GET_TCE", "accel", 800.0, 900.0, 1200.0),
        ];
        let results: Vec<String> = rows
            .iter()
            .map(|(h, p, min, med, p99)| {
                format!(
                    r#"{{"hcall":"{h}","path":"{p}","calls":100,"failed":0,"exits":{},"min_ns":{min},"median_ns":{med},"p99_ns":{p99},"median_ticks":5}}"#,
                    if *p == "user" { 100 } else { 0 }
                )
            })
            .collect();
        format!(
            "[  12.3] boot noise\n[  13.0]     # guest_bench: {JSON_MARKER}{{\"calls\":100,\"timebase_hz\":512000000,\"results\":[{}]}}\n",
            results.join(",")
        )
    }

    #[test]
    fn finds_the_line_in_a_console_log() {
        let rep = find(&sample()).unwrap();
        assert_eq!(rep.rows.len(), 4);
        assert_eq!(rep.hcalls(), ["H_PUT_TCE", "H_GET_TCE"]);
        let r = rep.ratio("H_PUT_TCE", "accel", "kvm").unwrap();
        assert!((r - 1000.0 / 1100.0).abs() < 1e-9);
        assert_eq!(rep.ratio("H_GET_TCE", "accel", "kvm"), None);
    }

    #[test]
    fn reads_plain_json_too() {
        let log = sample();
        let json = &log[log.find(JSON_MARKER).unwrap() + JSON_MARKER.len()..];
        assert_eq!(find(json).unwrap().calls, 100);
    }

    #[test]
    fn refuses_what_is_not_a_report() {
        assert!(matches!(find("no benchmark here"), Err(Error::NoReport)));
        assert!(matches!(
            find(&format!("{JSON_MARKER}{{\"calls\":1}}")),
            Err(Error::Field(f)) if f == "results"
        ));
        assert!(matches!(
            find(&format!("{JSON_MARKER}{{")),
            Err(Error::Json(_))
        ));
        let negative = sample().replace("\"min_ns\":900", "\"min_ns\":-1");
        assert!(matches!(find(&negative), Err(Error::Field(f)) if f == "min_ns"));
    }

    #[test]
    fn table_puts_paths_side_by_side() {
        let t = table(&find(&sample()).unwrap());
        let put = t.lines().find(|l| l.starts_with("H_PUT_TCE")).unwrap();
        assert!(
            put.contains("1.0 us (1.5 us)") && put.contains("10.0 us (20.0 us)"),
            "{put}"
        );
        assert!(put.contains("0.91") && put.contains("10.00"), "{put}");
        assert!(t.contains("exits to the VMM: accel 0 of 200, kvm 0 of 100, user 100 of 100"));
    }

    #[test]
    fn svg_has_one_bar_per_row_and_escapes_names() {
        let rep = find(&sample().replace("H_GET_TCE", "H_GET<&>")).unwrap();
        let s = svg(&rep);
        assert!(s.starts_with("<svg") && s.ends_with("</svg>\n"));
        assert_eq!(s.matches("<title>").count(), 4);
        assert!(s.contains("H_GET&lt;&amp;&gt;") && !s.contains("H_GET<&>"));
    }
}
