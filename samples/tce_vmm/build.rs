// SPDX-License-Identifier: GPL-2.0
//! Assembles the guest payload (`guest/*.S`) into a flat binary when building for ppc64le.
//!
//! For any other target the payload is empty: the VMM then builds (so that the workspace's
//! lint and build need no cross binutils) and refuses to run. The assembler and objcopy are
//! `powerpc64le-linux-gnu-as` and `-objcopy` (binutils-powerpc64le-linux-gnu, installed by
//! `scripts/kernel-toolchain.sh`); `TCE_VMM_CROSS` overrides the `powerpc64le-linux-gnu-` prefix.

use std::env;
use std::path::{
    Path,
    PathBuf, //
};
use std::process::{
    exit,
    Command, //
};

/// The payload's source files, assembled in this order and concatenated.
const SOURCES: [&str; 1] = ["guest/runner.S"];

/// Runs `cmd`, or stops the build with a message that says what to install.
fn run(mut cmd: Command, what: &str) {
    let shown = format!("{cmd:?}");
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => {
            eprintln!("error: {what} failed ({s}): {shown}");
            exit(1);
        }
        Err(e) => {
            eprintln!(
                "error: cannot run {what} ({e}): {shown}\n\
                 The ppc64le guest payload needs the powerpc64le cross binutils: \
                 run scripts/kernel-toolchain.sh (binutils-powerpc64le-linux-gnu)."
            );
            exit(1);
        }
    }
}

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let payload = out.join("guest.bin");
    println!("cargo:rerun-if-env-changed=TCE_VMM_CROSS");
    for src in SOURCES {
        println!("cargo:rerun-if-changed={src}");
    }

    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let endian = env::var("CARGO_CFG_TARGET_ENDIAN").unwrap_or_default();
    if arch != "powerpc64" || endian != "little" {
        // No guest can run here; an empty payload keeps the host build free of cross tools.
        std::fs::write(&payload, []).expect("write the empty payload");
        return;
    }

    let cross = env::var("TCE_VMM_CROSS").unwrap_or_else(|_| "powerpc64le-linux-gnu-".into());
    let mut image = Vec::new();
    for src in SOURCES {
        let stem = Path::new(src).file_stem().expect("a file name");
        let obj = out.join(stem).with_extension("o");
        let bin = out.join(stem).with_extension("bin");
        let mut asm = Command::new(format!("{cross}as"));
        asm.args(["-a64", "-mlittle", "-mpower9", "-mregnames", "-o"])
            .arg(&obj)
            .arg(src);
        run(asm, &format!("{cross}as"));
        let mut copy = Command::new(format!("{cross}objcopy"));
        copy.args(["-O", "binary", "-j", ".text"])
            .arg(&obj)
            .arg(&bin);
        run(copy, &format!("{cross}objcopy"));
        image.extend(std::fs::read(&bin).expect("read the assembled payload"));
    }
    std::fs::write(&payload, image).expect("write the payload");
}
