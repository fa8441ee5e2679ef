// SPDX-License-Identifier: GPL-2.0

//! The configuration of tce-init, read from `tce.*` words of the kernel command line.
//!
//! Recognised words (all optional; values contain no spaces):
//!
//! - `tce.module=PATH`: the module to load (default `/tce_accel.ko`);
//! - `tce.name=NAME`: its name for `delete_module` (default: the file name without `.ko`,
//!   with `-` turned into `_`);
//! - `tce.params=PARAMS`: the `finit_module` parameters (default `dyndbg=+p takeover=0`: the
//!   suite measures KVM's C path beside the module's, so the tables a VMM creates through KVM
//!   stay KVM's; `scripts/real-guest.sh` tests the takeover with QEMU);
//! - `tce.vm_type=N`: the `KVM_CREATE_VM` machine type (default 0);
//! - `tce.timeout=SECONDS`: how long the tests may go without reporting before they are
//!   killed (default 120);
//! - `tce.shutdown=poweroff|reboot`: how the machine is ended (default `poweroff`; `reboot`
//!   ends QEMU under `-no-reboot` too, and works where the kernel cannot power off, such as
//!   x86 without usable ACPI);
//! - `tce.bench=0|1`: whether `guest_bench` runs the sample VMM's benchmark (default 1; 0 skips
//!   it, for the debug kernel, whose figures would mean nothing);
//! - `tce.churn=N`: how many tables `table_churn_spares_other_vms` creates and closes (default
//!   100000; the debug kernel, several times slower, uses fewer);
//! - `tce.only=NAME,NAME...`: run only these tests of the runner, skip the others (default: all;
//!   `make demo`'s counted boot runs only `guest_bench`).

/// What tce-init does, after the kernel command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Path of the module file inside the initramfs.
    pub module: String,
    /// The module's name, as `delete_module` wants it.
    pub name: String,
    /// Parameters passed to `finit_module`.
    pub params: String,
    /// Machine type for `KVM_CREATE_VM`.
    pub vm_type: u64,
    /// Seconds the test runner may stay silent before it is killed.
    pub timeout_secs: u64,
    /// Whether to end with a restart instead of a power-off.
    pub reboot: bool,
    /// Whether `guest_bench` runs.
    pub bench: bool,
    /// Tables `table_churn_spares_other_vms` creates and closes.
    pub churn_tables: u64,
    /// The runner's tests to run, if not all.
    pub only: Option<Vec<String>>,
}

impl Config {
    /// Whether the runner runs test `name`.
    pub fn runs(&self, name: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.iter().any(|n| n == name))
    }
}

/// The default module path.
const DEFAULT_MODULE: &str = "/tce_accel.ko";

impl Default for Config {
    fn default() -> Self {
        Self {
            module: DEFAULT_MODULE.into(),
            name: module_name(DEFAULT_MODULE),
            params: "dyndbg=+p takeover=0".into(),
            vm_type: 0,
            timeout_secs: 120,
            reboot: false,
            bench: true,
            churn_tables: 100_000,
            only: None,
        }
    }
}

/// The module name the kernel gives the module file at `path`: its base name without `.ko`,
/// with `-` turned into `_`.
pub fn module_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let base = base.strip_suffix(".ko").unwrap_or(base);
    base.replace('-', "_")
}

/// Parses a decimal or `0x` hexadecimal number.
fn parse_u64(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Reads the configuration from the words of `cmdline`; returns it and a warning for every
/// `tce.*` word that was not understood.
pub fn parse(cmdline: &str) -> (Config, Vec<String>) {
    let mut cfg = Config::default();
    let mut name = None;
    let mut warnings = Vec::new();
    for word in cmdline.split_whitespace() {
        let Some(rest) = word.strip_prefix("tce.") else {
            continue;
        };
        let (key, value) = rest.split_once('=').unwrap_or((rest, ""));
        let mut number = |field: &mut u64| match parse_u64(value) {
            Some(v) => *field = v,
            None => warnings.push(format!("{word}: not a number, keeping {field}")),
        };
        match key {
            "module" if !value.is_empty() => cfg.module = value.into(),
            "name" if !value.is_empty() => name = Some(value.to_string()),
            "params" => cfg.params = value.into(),
            "vm_type" => number(&mut cfg.vm_type),
            "timeout" => number(&mut cfg.timeout_secs),
            "shutdown" if value == "poweroff" => cfg.reboot = false,
            "shutdown" if value == "reboot" => cfg.reboot = true,
            "bench" if value == "0" => cfg.bench = false,
            "bench" if value == "1" => cfg.bench = true,
            "churn" => number(&mut cfg.churn_tables),
            "only" if !value.is_empty() => {
                cfg.only = Some(value.split(',').map(str::to_string).collect());
            }
            _ => warnings.push(format!("{word}: unknown or empty, ignored")),
        }
    }
    cfg.name = name.unwrap_or_else(|| module_name(&cfg.module));
    (cfg, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_the_tests_that_run() {
        let (cfg, warnings) = parse("tce.only=guest_bench,vfio_attach");
        assert!(warnings.is_empty());
        assert!(cfg.runs("guest_bench") && cfg.runs("vfio_attach"));
        assert!(!cfg.runs("guest_e2e"));
        assert!(Config::default().runs("guest_e2e"));
        let (cfg, warnings) = parse("tce.only=");
        assert_eq!(warnings.len(), 1);
        assert!(cfg.runs("guest_e2e"));
    }

    #[test]
    fn defaults_without_tce_words() {
        let (cfg, warnings) = parse("console=ttyS0 panic=-1 printk.devkmsg=on\n");
        assert_eq!(cfg, Config::default());
        assert_eq!(cfg.module, "/tce_accel.ko");
        assert_eq!(cfg.name, "tce_accel");
        assert_eq!(cfg.params, "dyndbg=+p takeover=0");
        assert!(warnings.is_empty());
    }

    #[test]
    fn every_word() {
        let (cfg, warnings) = parse(
            "console=hvc0 tce.module=/lib/tce-accel-test.ko tce.params=dyndbg=+pf \
             tce.vm_type=0x1 tce.timeout=30 tce.shutdown=reboot tce.bench=0",
        );
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(cfg.module, "/lib/tce-accel-test.ko");
        assert_eq!(cfg.name, "tce_accel_test");
        assert_eq!(cfg.params, "dyndbg=+pf");
        assert_eq!(cfg.vm_type, 1);
        assert_eq!(cfg.timeout_secs, 30);
        assert!(cfg.reboot);
        assert!(!cfg.bench);
    }

    #[test]
    fn explicit_name_and_empty_params() {
        let (cfg, warnings) = parse("tce.name=other tce.params= tce.module=/x.ko");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(cfg.name, "other");
        assert_eq!(cfg.params, "");
        assert_eq!(cfg.module, "/x.ko");
    }

    #[test]
    fn bad_words_warn_and_keep_defaults() {
        let (cfg, warnings) = parse(
            "tce.timeout=soon tce.vm_type= tce.bogus=1 tce.module= tce.shutdown=halt \
                   tce.bench=no",
        );
        assert_eq!(cfg, Config::default());
        assert_eq!(warnings.len(), 6, "{warnings:?}");
        assert!(warnings[0].starts_with("tce.timeout=soon"));
    }

    #[test]
    fn module_names() {
        assert_eq!(module_name("/tce_accel.ko"), "tce_accel");
        assert_eq!(module_name("a/b/tce-accel.ko"), "tce_accel");
        assert_eq!(module_name("plain"), "plain");
    }
}
