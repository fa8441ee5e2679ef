# SPDX-License-Identifier: GPL-2.0
#
# tce-accel: the TCE hypercall fast path in Rust.
#
#   make demo    the main job: a guest's TCE hypercalls on the emulated POWER host, three
#                paths timed side by side; then a trace replay and the engine benchmark
#   make check   the test suite (what CI runs)
#   make bench   the engine benchmark only
#   make fuzz    the differential fuzz target (FUZZ_SECONDS, default 60)
#
# The kernel module, as for any out-of-tree module (Kbuild holds the object list):
#
#   make [KDIR=<kernel build>] [ARCH=.. CROSS_COMPILE=..] [CLIPPY=1]   builds tce_accel.ko
#   make modules_install                 installs it into the KDIR kernel's module tree
#   make rustfmtcheck                    checks the module's and the engine's formatting
#
# KDIR defaults to the cached x86-64 test kernel of scripts/kernel-build.sh; pass
# KDIR=/lib/modules/$(uname -r)/build for the running kernel. Every user-space target
# installs what it needs through scripts/setup.sh first.

CARGO ?= cargo
export PATH := $(HOME)/.cargo/bin:$(PATH)

TCE_CACHE ?= $(HOME)/.cache/tce-accel
KDIR ?= $(TCE_CACHE)/build-x86_64
KBUILD_OPTS ?= LLVM=-22 RUSTC=/usr/bin/rustc CLIPPY_DRIVER=/usr/bin/clippy-driver \
	BINDGEN=$(HOME)/.cargo/bin/bindgen
KMAKE = $(MAKE) -C $(KDIR) M=$(CURDIR) $(if $(MO),MO=$(MO)) $(KBUILD_OPTS)
RUSTFMT ?= rustfmt
MODULE_RS = $(wildcard rust/tce_accel/*.rs) $(wildcard rust/tce_engine/src/*.rs)

.PHONY: all modules modules_install rustfmt rustfmtcheck setup build check kernel-check \
	lint test demo bench fuzz clean

all: modules

modules modules_install:
	@LIBCLANG_PATH=/usr/lib/llvm-22/lib $(KMAKE) $@

rustfmt:
	@$(RUSTFMT) --edition 2021 $(MODULE_RS)

rustfmtcheck:
	@$(RUSTFMT) --edition 2021 --check $(MODULE_RS)

setup:
	@scripts/setup.sh

build: setup
	@echo "[build] cargo build --release (tce-sim)"
	@$(CARGO) build --release --locked --workspace

lint: setup
	@echo "[lint] rustfmt"
	@$(CARGO) fmt --all -- --check
	@$(MAKE) --no-print-directory rustfmtcheck
	@echo "[lint] clippy"
	@$(CARGO) clippy --locked --workspace --all-targets -q -- -D warnings
	@echo "[lint] Documentation/architecture.rst against the Cargo manifests"
	@python3 scripts/check-architecture.py

test: setup
	@echo "[test] user-space suite (unit, rule, replay and differential tests)"
	@scripts/test.sh

check: lint build kernel-check
	@$(MAKE) --no-print-directory test

kernel-check:
	@echo "[kernel-check] kernels, tce_accel.ko and QEMU runs (x86-64, ppc64le, ppc64le-debug, x86-64 KASAN)"
	@scripts/kernel-check.sh

demo: build
	@scripts/demo.sh

bench: setup
	@scripts/bench.sh

fuzz: setup
	@scripts/fuzz.sh $(FUZZ_SECONDS)

clean:
	@$(CARGO) clean
	@if [ -d "$(KDIR)" ]; then $(KMAKE) clean; fi
