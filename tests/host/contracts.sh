#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The module's safety contracts are carried by types, and a hook on a
# function the kernel lacks is refused at load (issue 16). Builds two
# broken variants with lab/build-module's overlay mechanism. KTAP output.
set -uo pipefail
cd "$(dirname "$0")/../.."
source tests/lib/ktap.sh

ktap_header
ktap_plan 3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# 1. A handler paired with a kernel function must say so with `unsafe impl`
# (its safety contract: the handler reads the arguments as that function's
# C signature declares them). Without `unsafe`, the module does not compile.
mkdir -p "$tmp/safe-impl"
sed '0,/^unsafe impl EntryHook for DoWpPage/s//impl EntryHook for DoWpPage/' rust/hooks.rs >"$tmp/safe-impl/hooks.rs"
out=$(lab/build-module "$tmp/safe-impl" 2>&1); st=$?
[[ $st != 0 && $out == *"E0200"* ]]
ktap_result $? "hook_without_unsafe_impl_does_not_compile" \
	"build status $st; $(grep -m1 -o 'error\[E0200\][^$]*' <<<"$out" || echo 'no E0200 in the output')"

# 2. A required hook on a function this kernel does not have (a typo, or a
# function the compiler inlined) makes insmod fail with ENOENT and one
# dmesg line naming the function and the kernel version.
mkdir -p "$tmp/typo"
sed 's/const FUNCTION: &'"'"'static CStr = c"do_wp_page";/const FUNCTION: \&'"'"'static CStr = c"do_wp_pag";/' rust/hooks.rs >"$tmp/typo/hooks.rs"
grep -q 'c"do_wp_pag"' "$tmp/typo/hooks.rs"
ktap_result $? "typo_variant_prepared"
ko=$(lab/build-module "$tmp/typo" 2>/dev/null | tail -1)
out=$(scripts/vm-run --timeout 120 --no-module --add "$ko:/typo.ko" -- \
	sh -c 'insmod /typo.ko; echo "insmod status $?"; dmesg | grep cowstat' 2>&1)
[[ $out == *"insmod status "[1-9]* && $out == *"do_wp_pag is not a function on kernel "* ]]
ktap_result $? "missing_required_hook_refuses_load" \
	"$(grep -E 'insmod status|cowstat:' <<<"$out" | tr '\n' ' ')"
ktap_finished
