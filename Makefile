# SPDX-License-Identifier: GPL-2.0
#
# tce-accel: the TCE hypercall fast path in Rust.
#
#   make demo    the main job: builds, replays a demo trace on the simulated host and
#                prints the engine's measured hot-path costs
#   make check   the test suite (what CI runs)
#   make bench   the engine benchmark only
#   make fuzz    the differential fuzz target (FUZZ_SECONDS, default 60)
#
# Every target installs what it needs through scripts/setup.sh first.

CARGO ?= cargo
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: all setup build check lint test demo bench fuzz clean

all: build

setup:
	@scripts/setup.sh

build: setup
	@echo "[build] cargo build --release (tce-sim)"
	@$(CARGO) build --release --locked --workspace

lint: setup
	@echo "[lint] rustfmt"
	@$(CARGO) fmt --all -- --check
	@echo "[lint] clippy"
	@$(CARGO) clippy --locked --workspace --all-targets -q -- -D warnings

test: setup
	@echo "[test] user-space suite (unit, rule, replay and differential tests)"
	@scripts/test.sh

check: lint build
	@$(MAKE) --no-print-directory test

demo: build
	@scripts/demo.sh

bench: setup
	@scripts/bench.sh

fuzz: setup
	@scripts/fuzz.sh $(FUZZ_SECONDS)

clean:
	@$(CARGO) clean
