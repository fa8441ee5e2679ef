// SPDX-License-Identifier: GPL-2.0

//! Replays every trace in `tests/traces` through the `tce-sim` binary and checks its output.
//!
//! Each `NAME.trace` comes with `NAME.expected`, the exact standard output. `NAME.args` may hold
//! one line of extra command-line options, and `NAME.stderr` lines that standard error must
//! contain. The exit status must be 1 if the expected output has an `error EPARSE` line and 0
//! otherwise, and standard error must name the line number of every malformed line.

use std::fs;
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

/// The fewest traces the directory may hold, so that the replay cannot pass vacuously.
const MIN_TRACES: usize = 10;

/// The most differing lines reported for one trace.
const MAX_REPORTED: usize = 20;

/// The line `tce-sim` prints for a malformed line.
const EPARSE: &str = "error EPARSE";

fn traces_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/traces")
}

/// The names (without extension) of the files in the trace directory that end in `.ext`.
fn names_with(ext: &str) -> Vec<String> {
    let suffix = format!(".{ext}");
    let mut names: Vec<String> = fs::read_dir(traces_dir())
        .expect("the trace directory is readable")
        .map(|e| e.expect("a readable directory entry").file_name())
        .filter_map(|n| n.to_str()?.strip_suffix(&suffix).map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// One trace and what running it must produce.
struct Case {
    name: String,
    trace: PathBuf,
    /// The trace's lines.
    lines: Vec<String>,
    args: Vec<String>,
    expected: String,
    stderr_needles: Vec<String>,
}

impl Case {
    fn load(name: &str) -> Self {
        let dir = traces_dir();
        let read = |ext: &str| fs::read_to_string(dir.join(format!("{name}.{ext}"))).ok();
        let trace = dir.join(format!("{name}.trace"));
        let text = fs::read_to_string(&trace).expect("the trace is readable");
        Self {
            name: name.to_owned(),
            lines: text.lines().map(str::to_owned).collect(),
            trace,
            args: read("args")
                .map(|a| a.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default(),
            expected: read("expected")
                .unwrap_or_else(|| panic!("{name}.trace has no {name}.expected")),
            stderr_needles: read("stderr")
                .map(|s| {
                    s.lines()
                        .filter(|l| !l.trim().is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The 1-based numbers of the trace lines that are commands, one per line of output.
    fn command_lines(&self) -> Vec<usize> {
        self.lines
            .iter()
            .enumerate()
            .filter(|(_, l)| {
                let l = l.trim();
                !l.is_empty() && !l.starts_with('#')
            })
            .map(|(i, _)| i + 1)
            .collect()
    }

    /// Runs the binary with the trace file as its argument.
    fn run_file(&self) -> Output {
        Command::new(env!("CARGO_BIN_EXE_tce-sim"))
            .args(&self.args)
            .arg(&self.trace)
            .output()
            .expect("tce-sim runs")
    }

    /// Runs the binary with the trace on standard input, naming it `stdin_arg` if given.
    fn run_stdin(&self, stdin_arg: Option<&str>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tce-sim"))
            .args(&self.args)
            .args(stdin_arg)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tce-sim starts");
        let text = fs::read(&self.trace).expect("the trace is readable");
        let mut stdin = child.stdin.take().expect("stdin is piped");
        // A writer thread keeps a large trace from filling the pipe while the child's output
        // fills the other one.
        let writer = std::thread::spawn(move || stdin.write_all(&text));
        let out = child.wait_with_output().expect("tce-sim finishes");
        writer
            .join()
            .expect("the writer thread finishes")
            .expect("the trace is written to stdin");
        out
    }

    /// Checks one run's output; returns a description of every problem found.
    fn check(&self, how: &str, out: &Output) -> Vec<String> {
        let mut problems = Vec::new();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stdout != self.expected {
            problems.push(format!(
                "{} ({how}): standard output differs from {}.expected:\n{}",
                self.name,
                self.name,
                self.diff(&stdout)
            ));
        }
        let malformed = self.expected.lines().any(|l| l == EPARSE);
        let want = i32::from(malformed);
        if out.status.code() != Some(want) {
            problems.push(format!(
                "{} ({how}): exit status {:?}, expected {want}",
                self.name,
                out.status.code()
            ));
        }
        for needle in &self.stderr_needles {
            if !stderr.contains(needle.as_str()) {
                problems.push(format!(
                    "{} ({how}): standard error does not contain `{needle}`:\n{stderr}",
                    self.name
                ));
            }
        }
        let commands = self.command_lines();
        for (i, line) in self.expected.lines().enumerate() {
            let Some(&n) = commands.get(i) else { break };
            if line == EPARSE && !names_line(&stderr, n) {
                problems.push(format!(
                    "{} ({how}): standard error does not name malformed line {n}:\n{stderr}",
                    self.name
                ));
            }
        }
        problems
    }

    /// A line diff of the actual output against the expected one, naming the trace line of
    /// every command whose output differs.
    fn diff(&self, actual: &str) -> String {
        let want: Vec<&str> = self.expected.lines().collect();
        let got: Vec<&str> = actual.lines().collect();
        let commands = self.command_lines();
        let mut out = String::new();
        let mut reported = 0;
        for i in 0..want.len().max(got.len()) {
            let (w, g) = (want.get(i), got.get(i));
            if w == g {
                continue;
            }
            reported += 1;
            if reported > MAX_REPORTED {
                out.push_str("  ... (more differences left out)\n");
                break;
            }
            let at = match commands.get(i) {
                Some(&n) => format!("{}.trace:{n}: `{}`", self.name, self.lines[n - 1].trim()),
                None => "past the last command".to_owned(),
            };
            out.push_str(&format!("@@ output line {} ({at})\n", i + 1));
            if let Some(w) = w {
                out.push_str(&format!("- {w}\n"));
            }
            if let Some(g) = g {
                out.push_str(&format!("+ {g}\n"));
            }
        }
        if want.len() != got.len() {
            out.push_str(&format!(
                "  expected {} lines, got {}\n",
                want.len(),
                got.len()
            ));
        }
        if !actual.is_empty() && !actual.ends_with('\n') {
            out.push_str("  the output does not end with a newline\n");
        }
        out
    }
}

/// Whether `stderr` names line `n`: "line N" not followed by another digit.
fn names_line(stderr: &str, n: usize) -> bool {
    let needle = format!("line {n}");
    stderr.match_indices(&needle).any(|(at, _)| {
        !stderr[at + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

/// Panics with every problem, if there is any.
fn report(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "{} problem(s):\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

#[test]
fn every_trace_matches_its_expected_output() {
    let names = names_with("trace");
    assert!(
        names.len() >= MIN_TRACES,
        "only {} traces in {}",
        names.len(),
        traces_dir().display()
    );
    let mut problems = Vec::new();
    for name in &names {
        let case = Case::load(name);
        problems.extend(case.check("file argument", &case.run_file()));
    }
    report(problems);
}

#[test]
fn every_trace_matches_through_stdin() {
    let mut problems = Vec::new();
    for name in names_with("trace") {
        let case = Case::load(&name);
        problems.extend(case.check("standard input", &case.run_stdin(None)));
    }
    report(problems);
}

#[test]
fn dash_reads_stdin() {
    let case = Case::load("spec_example");
    report(case.check("`-` argument", &case.run_stdin(Some("-"))));
}

#[test]
fn traces_and_expected_outputs_pair_up() {
    let traces = names_with("trace");
    let expected = names_with("expected");
    assert!(traces.len() >= MIN_TRACES, "only {} traces", traces.len());
    assert_eq!(
        traces, expected,
        "every .trace needs a .expected and every .expected a .trace"
    );
    for ext in ["args", "stderr"] {
        for name in names_with(ext) {
            assert!(
                traces.contains(&name),
                "{name}.{ext} belongs to no trace (no {name}.trace)"
            );
        }
    }
    for name in &traces {
        let case = Case::load(name);
        let outputs = case.expected.lines().count();
        let commands = case.command_lines().len();
        assert_eq!(
            outputs, commands,
            "{name}: {commands} commands but {outputs} expected lines (one line per command)"
        );
    }
}

#[test]
fn help_and_usage_errors() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tce-sim"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("tce-sim runs")
    };
    let help = run(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    for option in ["--host-page-shift", "--locked-limit", "--help"] {
        assert!(text.contains(option), "--help does not mention {option}");
    }
    // Usage errors are neither success (0) nor a trace with malformed lines (1).
    let missing = traces_dir().join("no-such-file.trace");
    let missing = missing.to_str().expect("a UTF-8 path");
    for args in [
        &["--no-such-option"][..],
        &["--host-page-shift", "11"],
        &["--host-page-shift", "25"],
        &["--locked-limit"],
        &["--locked-limit", "0x"],
        &[missing],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "tce-sim {args:?}");
        assert!(out.stdout.is_empty(), "tce-sim {args:?} printed on stdout");
        assert!(!out.stderr.is_empty(), "tce-sim {args:?} printed no error");
    }
}
