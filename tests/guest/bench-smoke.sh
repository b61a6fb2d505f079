#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Smoke run of every benchmark at tiny sizes (KTAP): the guest driver
# scripts/guest/lib/bench.sh in `smoke` mode, then checks of the records'
# shape and of the exact counts they carry. No timing thresholds.
. "$(dirname "$0")/../lib/ktap.sh"
OUT=/tmp/bench-smoke.jsonl
DRIVER=/lib/cowstat/bench.sh

ktap_header
ktap_plan 11

# records BENCH METRIC: number of records of that bench and metric.
records() { grep -c "\"bench\":\"$1\",\"metric\":\"$2\"" $OUT; }
# first METRIC: the first sample of the first record of METRIC.
first() {
	grep -m1 "\"metric\":\"$1\"" $OUT | sed -n 's/.*"samples":\[\([0-9.e+-]*\).*/\1/p' | cut -d. -f1
}
# param METRIC NAME: a numeric parameter of the first record of METRIC.
param() {
	grep -m1 "\"metric\":\"$1\"" $OUT | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"
}

if ! command -v cowstat-bench >/dev/null; then
	ktap_result 1 "bench_binary_in_guest" \
		"cowstat-bench is not in the guest: build/cowstat-bench must be added by vm-run"
	ktap_finished
	exit 1
fi
ktap_result 0 "bench_binary_in_guest"

rm -f $OUT
sh $DRIVER smoke $OUT >/tmp/bench-smoke.log 2>&1
st=$?
ktap_result $st "driver_smoke_run" "exit status $st" "$(tail -3 /tmp/bench-smoke.log)"

# Every benchmark left its records: overhead loaded, unloaded and with
# rows left behind by fill; fork THP off and on; know for the heap sweep,
# the VMA sweep and after a fill; scale loaded and unloaded; two fills.
got="$(records overhead cow_fault) $(records overhead first_touch) $(records overhead memcpy_4k)"
got="$got $(records fork fork_user) $(records fork fork_dup_mmap) $(records know read_procs)"
got="$got $(records know read_smaps) $(records scale wall_per_fault) $(records fill fork_write_exit)"
ktap_expect_eq "records_of_every_benchmark" "3 3 3 2 2 3 3 2 2" "$got"

# The loaded overhead run's child wrote 23 pages after the fork: its row
# has those 23 copies plus at most a few of its own stack and allocator
# pages (the timing buffer is allocated after the fork).
c=$(first child_cow_copies)
[ -n "$c" ] && [ "$c" -ge 23 ] && [ "$c" -le 31 ]
ktap_result $? "overhead_child_copies_23" "expected 23..31 (23 + stack and allocator pages), observed $c"

# fill: each of its 5 children copied a page, so each left a row.
rows=$(param fork_write_exit rows_after)
[ -n "$rows" ] && [ "$rows" -ge 5 ]
ktap_result $? "fill_leaves_rows" "rows_after $rows (expected >= 5)"

# fork: dup_mmap happens inside fork(), so every cowstat sample is at most
# the userspace one (a containment check, not a timing threshold).
u=$(grep -m1 '"metric":"fork_user"' $OUT | sed -n 's/.*"samples":\[\([^]]*\)\].*/\1/p')
d=$(grep -m1 '"metric":"fork_dup_mmap"' $OUT | sed -n 's/.*"samples":\[\([^]]*\)\].*/\1/p')
ok=$(echo "$u;$d" | awk -F';' '{ n = split($1, a, ","); m = split($2, b, ",");
	if (n != 2 || m != 2) { print 1; exit } for (i = 1; i <= n; i++) if (b[i] + 0 > a[i] + 0) { print 1; exit } print 0 }')
ktap_result "$ok" "fork_dup_mmap_within_fork" "fork() $u; dup_mmap $d"

# know: the child wrote K pages; its cowstat row and its smaps agree.
k=$(param read_smaps pages_written)
row=$(param read_smaps cow_copies_row)
pd=$(param read_smaps rollup_private_dirty_kb)
[ -n "$k" ] && [ "$row" -ge "$k" ] && [ "$row" -le $((k + 8)) ]
ktap_result $? "know_row_counts_writes" "K $k, row cow_copies $row (expected K..K+8)"
[ -n "$pd" ] && [ "$pd" -ge $((k * 4)) ]
ktap_result $? "know_smaps_sees_writes" "rollup Private_Dirty ${pd} kB >= 4 kB x K ($k)"

# scale: 3 processes x 10 pages = 30 copies at least, none in <other>.
g=$(first global_cow_copies)
o=$(first other_row_copies)
[ -n "$g" ] && [ "$g" -ge 30 ] && [ "$o" = 0 ]
ktap_result $? "scale_counts_all_copies" "global cow_copies $g (>= 30), <other> $o (0)"

# one: the measuring child wrote K pages; self, pid and procs all show its
# row (K copies plus at most a few of its own stack pages), at 1 and 4
# live processes held.
k=$(param read_self pages_written)
sc=$(param read_self self_cow_copies)
pc=$(param read_self pid_cow_copies)
n=$(records one read_self)
[ "$n" = 2 ] && [ -n "$k" ] && [ "$sc" -ge "$k" ] && [ "$sc" -le $((k + 8)) ] && [ "$pc" = "$sc" ]
ktap_result $? "one_self_and_pid_show_writes" "records $n (2), K $k, self cow_copies $sc (K..K+8), pid $pc (= self)"

# The host-side summary works on these records.
rm -rf /tmp/bench-report
cowstat-bench report --out-dir /tmp/bench-report $OUT >/dev/null 2>&1 &&
	grep -q '^## 5. Scale' /tmp/bench-report/report.md &&
	grep -q '"probe_overhead"' /tmp/bench-report/results.json
ktap_result $? "report_renders"

ktap_finished
