#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The Rust/C interface of the module (issue 16, "every layout checked"):
# Rust reads no C struct, so what must match is rust/glue.rs's declarations
# and rust/glue.h's prototypes, which no compiler compares. scripts/glue-abi
# compares them (make module runs it too); three altered copies show that
# it catches a changed return type, a dropped parameter and a changed Rust
# export. KTAP output.
set -uo pipefail
cd "$(dirname "$0")/../.."
source tests/lib/ktap.sh

ktap_header
ktap_plan 4
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
check() { scripts/glue-abi "$@" 2>&1; }

out=$(check rust/glue.h rust/glue.rs rust/procfs.rs); st=$?
ktap_result $st "glue_rs_matches_glue_h" "$out"

# alter FILE SED-EXPRESSION: a copy of rust/FILE in $tmp with one change,
# or a failure if the expression matched nothing (the control would be void).
alter() {
	sed "$2" "rust/$1" >"$tmp/$1"
	! cmp -s "rust/$1" "$tmp/$1"
}
# expect_mismatch NAME FUNCTION H RS PROCFS: the check fails naming FUNCTION.
expect_mismatch() {
	local name=$1 fn=$2 out st
	shift 2
	out=$(check "$@"); st=$?
	[[ $st == 1 && $out == *"$fn:"* ]]
	ktap_result $? "$name" "status $st: $(grep -m1 "$fn" <<<"$out" || echo "$out" | tail -1)"
}

if alter glue.h 's/^int cowstat_global_tgid(int nr);/long cowstat_global_tgid(int nr);/'; then
	expect_mismatch changed_return_type_caught cowstat_global_tgid \
		"$tmp/glue.h" rust/glue.rs rust/procfs.rs
else ktap_result 1 changed_return_type_caught "the sed matched nothing in glue.h"; fi

if alter glue.rs '/^    pub(crate) fn cowstat_ftrace_new(/,/) -> \*mut FtraceOps;/{/^        n: c_uint,$/d}'; then
	expect_mismatch dropped_parameter_caught cowstat_ftrace_new \
		rust/glue.h "$tmp/glue.rs" rust/procfs.rs
else ktap_result 1 dropped_parameter_caught "the sed matched nothing in glue.rs"; fi

if alter procfs.rs 's/fn cowstat_rs_show(m: \*mut glue::SeqFile, id: c_ulong, arg: c_long)/fn cowstat_rs_show(m: *mut glue::SeqFile, id: c_ulong, arg: c_int)/'; then
	expect_mismatch changed_rust_export_caught cowstat_rs_show \
		rust/glue.h rust/glue.rs "$tmp/procfs.rs"
else ktap_result 1 changed_rust_export_caught "the sed matched nothing in procfs.rs"; fi

ktap_finished
