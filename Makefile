# SPDX-License-Identifier: GPL-2.0
# cowstat developer entry points. `make help` lists them.

# Which kernel: own (the project's 6.12 tree, build/kernel) or debian (Debian
# 13's stock Rust-enabled kernel from trixie-backports: scripts/debian-kernel).
TARGET ?= own
ifeq ($(filter $(TARGET),own debian),)
$(error TARGET=$(TARGET): use TARGET=own or TARGET=debian)
endif
# Goals that know only the project's kernel so far.
OWN_ONLY_GOALS := test test-debug bench clippy dist lab-grade
ifeq ($(TARGET),debian)
ifneq ($(filter $(OWN_ONLY_GOALS),$(MAKECMDGOALS)),)
$(error TARGET=debian does not apply to '$(filter $(OWN_ONLY_GOALS),$(MAKECMDGOALS))' yet; it works with module, vm, demo and demo-redis)
endif
endif

KDIR_DEFAULT := $(CURDIR)/build/kernel
KDIR ?= $(KDIR_DEFAULT)
# Modules must be built with the kernel's compiler; build-kernel records it.
LLVM ?= $(shell sed -n 's/^LLVM=//p' $(KDIR)/.cowstat-make-flags 2>/dev/null)
RUST_VERSION := 1.95.0
export RUSTUP_TOOLCHAIN := $(RUST_VERSION)
export PATH := $(HOME)/.cargo/bin:$(PATH)

BUILD := $(CURDIR)/build
CRATE := $(CURDIR)/userspace-demo
MUSL := x86_64-unknown-linux-musl
COW_DEMO := $(BUILD)/cow-demo
MODULE := $(BUILD)/cowstat.ko
MODULE_DEBIAN := $(BUILD)/debian/cowstat.ko
KMAKE = $(MAKE) --no-print-directory -C $(KDIR) M=$(CURDIR) $(if $(LLVM),LLVM=$(LLVM))

.PHONY: test-debug
.PHONY: all help setup kernel check-kdir check-glue module module-debian cow-demo vm demo demo-redis test \
	fmt fmtcheck clippy clean dist lab-grade

all: module

help:
	@echo 'make             build cowstat.ko (builds the test kernel on first use)'
	@echo 'make demo        boot the test VM and run the guided COW tour'
	@echo 'make demo-redis  real Redis BGSAVE in the VM: Redis vs cowstat COW figures'
	@echo 'make test        everything, on both kernels: ends with "N passed, N failed"'
	@echo 'make bench       benchmarks in one VM boot: build/bench/{report.md,results.json,*.svg}'
	@echo 'make test-debug  reliability lane on a KASAN/lockdep/kmemleak kernel (slow)'
	@echo 'make vm          interactive shell in the test VM with cowstat loaded'
	@echo 'make cow-demo    build the static cow-demo binary and test tools (build/bin/)'
	@echo 'make fmt | fmtcheck | clippy   format or lint the module and the crate'
	@echo 'make dist        course-lab student bundle (build/dist/cowstat-lab-VERSION.tar.gz)'
	@echo 'make lab-grade [LAB=starter|solution]   build the lab module and grade it in the VM'
	@echo 'make KDIR=/path/to/kernel      build against another Rust-enabled kernel'
	@echo 'make module|vm|demo|demo-redis TARGET=debian   the same on Debian 13'"'"'s stock kernel'

setup:
	@MAKEFLAGS= scripts/setup-host

# The project's own kernel; skipped when KDIR points elsewhere.
kernel: setup
ifeq ($(KDIR),$(KDIR_DEFAULT))
	@MAKEFLAGS= scripts/build-kernel >/dev/null
endif

# A KDIR without Rust metadata fails here with one line, not deep in kbuild.
# After `kernel`, which builds it, even when make runs both at once (-j).
check-kdir: kernel
	@test -f $(KDIR)/rust/libkernel.rmeta || { echo "error: KDIR=$(KDIR) has no Rust metadata (rust/libkernel.rmeta): build it with CONFIG_RUST=y, or omit KDIR to use the project's kernel" >&2; exit 2; }

# Rust's extern "C" declarations are taken on trust by both compilers:
# compare them with rust/glue.h before any module build.
check-glue:
	@out=$$(scripts/glue-abi rust/glue.h rust/glue.rs rust/procfs.rs 2>&1) || \
		{ echo "$$out" >&2; echo "error: rust/glue.rs and rust/glue.h disagree (above): change one to match the other" >&2; exit 2; }

# Built in the Debian 13 root against Debian's own kernel (scripts/debian-kernel).
module-debian: setup check-glue
	@scripts/build-module-debian $(CURDIR) $(MODULE_DEBIAN) >/dev/null

ifeq ($(TARGET),debian)
module: module-debian
else
module: kernel check-kdir check-glue
	@+$(KMAKE) modules
	@mkdir -p $(dir $(MODULE)) && cp cowstat.ko $(MODULE)
endif

cow-demo: setup
	@cd $(CRATE) && MAKEFLAGS= cargo build --quiet --release --locked --target $(MUSL)
	@mkdir -p $(BUILD)/bin && cp $(CRATE)/target/$(MUSL)/release/cow-demo $(COW_DEMO)
	@# Every binary of the crate goes to the guest's /bin (scripts/vm-run).
	@find $(CRATE)/target/$(MUSL)/release -maxdepth 1 -type f -perm -u+x \
		-exec cp {} $(BUILD)/bin/ \;

vm: module cow-demo
	@scripts/vm-run --target $(TARGET) --interactive

demo: module cow-demo
	@COWSTAT_TARGET=$(TARGET) scripts/demo

demo-redis: module cow-demo
	@COWSTAT_TARGET=$(TARGET) scripts/demo-redis

# Both kernels: the project's 6.12 and Debian 13's stock 7.x. Debian's root
# is set up beside the own kernel's compile (cold, its first ~5 minutes are
# downloads and unpacking, which the compile does not wait for). If Debian's
# side cannot be prepared (no registry, say), its suites fail and the own
# kernel's still run. -j2, not -j3: cold, Debian's side then starts only
# after cow-demo's build (2 min late), but it was still ready 5 min before
# the own kernel, which is the critical path (measured 2026-11-29).
DEBIAN_PREP_FAILED := $(BUILD)/debian/.prepare-failed
test:
	@rm -f $(DEBIAN_PREP_FAILED)
	@$(MAKE) --no-print-directory -j2 module cow-demo debian-prepare
	@if test -e $(DEBIAN_PREP_FAILED) || ! $(MAKE) --no-print-directory module-debian; then \
		echo "make test: Debian's kernel could not be prepared (see above): its suites will fail, the own kernel's run" >&2; fi
	@scripts/run-tests

# Only `make test` uses it; failure is recorded, not fatal (see test).
.PHONY: debian-prepare
debian-prepare: setup
	@MAKEFLAGS= scripts/debian-kernel >/dev/null || \
		{ mkdir -p $(dir $(DEBIAN_PREP_FAILED)) && touch $(DEBIAN_PREP_FAILED); }

# Reliability lane: debug kernel (KASAN, lockdep, kmemleak, failslab).
test-debug: module cow-demo
	@scripts/test-debug

# Benchmarks (docs/benchmarks.md): about 8 minutes under TCG.
.PHONY: bench
bench: module cow-demo
	@scripts/bench

fmt: kernel
	rustfmt --edition 2021 --config-path $(KDIR)/.rustfmt.toml rust/*.rs lab/starter/*.rs
	cd $(CRATE) && cargo fmt

fmtcheck: kernel
	rustfmt --check --edition 2021 --config-path $(KDIR)/.rustfmt.toml rust/*.rs lab/starter/*.rs
	cd $(CRATE) && cargo fmt --check

clippy: kernel check-kdir
	@+$(KMAKE) CLIPPY=1 modules
	cd $(CRATE) && cargo clippy --all-targets --locked -- -D warnings

# Course lab (docs/lab/README.md). LAB: starter, solution or an overlay dir.
LAB ?= starter
dist: module cow-demo
	@scripts/make-dist

lab-grade: module cow-demo
	@ko=$$(lab/build-module --kdir $(KDIR) $(LAB)) && lab/grade "$$ko"

clean:
	-@test -d $(KDIR) && $(KMAKE) clean
	rm -rf $(BUILD)/cowstat.ko $(MODULE_DEBIAN) $(COW_DEMO) $(BUILD)/vm
