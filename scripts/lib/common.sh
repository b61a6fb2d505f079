# SPDX-License-Identifier: GPL-2.0
# Shared settings and helpers for cowstat's scripts (sourced, not run).

# Pinned toolchain: a Rust .ko loads only on a kernel built by the same rustc.
RUST_VERSION=1.95.0
BINDGEN_VERSION=0.73.2
KERNEL_SOURCE_TARBALL=/usr/src/linux-source-6.12.tar.xz

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${COWSTAT_BUILD:-$REPO_ROOT/build}
# Kernel builds are shared between checkouts, keyed by a hash of their inputs.
CACHE_DIR=${COWSTAT_CACHE:-/var/cache/cowstat}

export RUSTUP_TOOLCHAIN=$RUST_VERSION
export PATH=$HOME/.cargo/bin:$PATH

die() {
	echo "${0##*/}: error: $*" >&2
	exit 2
}
step() { echo ">>> $*" >&2; }

# kbuild_modules KDIR TREE [MAKE-VAR=VALUE...]: build the out-of-tree
# module(s) in TREE against the kernel build KDIR, with the compiler choice
# build-kernel recorded there (LLVM=1 for the debug kernel; $LLVM wins, as
# in the top Makefile). Kbuild's output goes to stderr.
kbuild_modules() {
	local kdir=$1 tree=$2 llvm
	shift 2
	llvm=${LLVM:-$(sed -n 's/^LLVM=//p' "$kdir/.cowstat-make-flags" 2>/dev/null || true)}
	make -s --no-print-directory -C "$kdir" M="$tree" ${llvm:+LLVM=$llvm} "$@" modules >&2
}
