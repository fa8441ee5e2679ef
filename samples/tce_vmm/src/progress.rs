// SPDX-License-Identifier: GPL-2.0
//! What the VMM is doing: the step the watchdog names when it gives up, and the `--trace` lines.

use std::sync::atomic::{
    AtomicBool,
    Ordering, //
};
use std::sync::Mutex;

static TRACE: AtomicBool = AtomicBool::new(false);
static STEP: Mutex<String> = Mutex::new(String::new());

/// Prints every step and every exit from now on.
pub fn enable_trace() {
    TRACE.store(true, Ordering::Relaxed);
}

/// Records the step the VMM is starting, and prints it when tracing.
pub fn step(msg: String) {
    if TRACE.load(Ordering::Relaxed) {
        println!("tce-vmm: trace: {msg}");
    }
    *STEP.lock().unwrap_or_else(|e| e.into_inner()) = msg;
}

/// Prints a line when tracing; `msg` is only formatted then.
pub fn trace(msg: impl FnOnce() -> String) {
    if TRACE.load(Ordering::Relaxed) {
        println!("tce-vmm: trace: {}", msg());
    }
}

/// The last step recorded.
pub fn current() -> String {
    STEP.lock().unwrap_or_else(|e| e.into_inner()).clone()
}
