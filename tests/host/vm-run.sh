#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Host-side tests of the scripts' interfaces: vm-run exit statuses, --add,
# bad input, KDIR checks, the kernel build cache. KTAP output.
set -uo pipefail
cd "$(dirname "$0")/../.."
source tests/lib/ktap.sh

ktap_header
ktap_plan 12

out=$(scripts/vm-run --timeout 120 -- false 2>&1); st=$?
ktap_expect_eq "vm_run_false_exits_1" 1 "$st"

out=$(scripts/vm-run --timeout 120 -- sh -c 'exit 7' 2>&1); st=$?
ktap_expect_eq "vm_run_passes_status_7" 7 "$st"

start=$SECONDS
out=$(scripts/vm-run --timeout 20 -- sleep 60 2>&1); st=$?
took=$((SECONDS - start))
ktap_expect_eq "vm_run_timeout_exits_124" 124 "$st"
[[ $took -le 35 ]]
ktap_result $? "vm_run_timeout_within_35s" "took ${took}s"

out=$(scripts/vm-run --timeout 120 -- sh -c 'echo c > /proc/sysrq-trigger' 2>&1); st=$?
ktap_expect_eq "vm_run_guest_crash_exits_125" 125 "$st"

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "hello from the host $$" >"$tmp/somefile"
out=$(scripts/vm-run --timeout 120 --add "$tmp/somefile:/x" -- cat /x 2>/dev/null); st=$?
[[ $st == 0 && $out == *"hello from the host $$"* ]]
ktap_result $? "vm_run_add_file" "status $st"

out=$(scripts/vm-run --bogus -- true 2>&1); st=$?
[[ $st == 2 && $(wc -l <<<"$out") == 1 && $out == *"'--bogus'"* ]]
ktap_result $? "vm_run_unknown_flag_one_line_error" "status $st: $out"

out=$(scripts/test-debug --bogus 2>&1); st=$?
[[ $st == 2 && $(wc -l <<<"$out") == 1 && $out == *"'--bogus'"*--plant-leak* ]]
ktap_result $? "test_debug_unknown_flag_one_line_error" "status $st: $out"

out=$(scripts/vm-run --add "$tmp/nonexistent" -- true 2>&1); st=$?
[[ $st == 2 && $(wc -l <<<"$out") == 1 && $out == *nonexistent* ]]
ktap_result $? "vm_run_missing_add_file_error" "status $st: $out"

mkdir -p "$tmp/fake-kernel"
out=$(make -s KDIR="$tmp/fake-kernel" module 2>&1); st=$?
[[ $st != 0 && $out == *"no Rust metadata"* ]]
ktap_result $? "make_kdir_without_rust_errors" "status $st: $(head -1 <<<"$out")"

out=$(scripts/build-kernel --bogus 2>&1); st=$?
[[ $st == 2 && $out == *"'--bogus'"* ]]
ktap_result $? "build_kernel_unknown_flag_error" "status $st: $out"

start=$(date +%s%N)
scripts/build-kernel >/dev/null 2>&1; st=$?
ms=$((($(date +%s%N) - start) / 1000000))
[[ $st == 0 && $ms -lt 5000 ]]
ktap_result $? "kernel_build_is_cached" "status $st, ${ms} ms"

ktap_finished
