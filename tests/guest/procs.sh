#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Per-process rows over a whole process life (docs/proc-interface.md:
# procs, Row lifecycle, Reset semantics, self, pid; issue 15): 100,000
# processes of churn, pid reuse under a lowered pid_max, a child's final
# row after waitpid, self, a new pid namespace, who may reset, resets
# while processes fault, more live processes than the table holds. KTAP.
# The workloads are cowstat-lifecycle subcommands, which print "check NAME
# EXPECTED OBSERVED" lines.
. "$(dirname "$0")/../lib/ktap.sh"
. "$(dirname "$0")/cowstat-lib.sh"

L=cowstat-lifecycle
# Processes of the churn (the issue asks for at least 100,000).
CHURN=${COWSTAT_CHURN:-100000}

# now: seconds since boot, in $NOW (no fork).
now() { read -r NOW _ </proc/uptime; }
# since T0: seconds since $T0 (from now), in $SECS.
since() {
	now
	SECS=$(awk -v a="$1" -v b="$NOW" 'BEGIN { printf "%.1f", b - a }')
}

# forks_since_boot: tasks created since boot (/proc/stat "processes").
forks_since_boot() { awk '$1 == "processes" { print $2 }' /proc/stat; }

# observed REPORT COUNTER parent|child: a figure of cow-demo's report table.
observed() {
	col=3
	[ "$3" = child ] && col=5
	echo "$1" | awk -v c="$2" -v k=$col '$1 == c && NF == 5 { print $k; exit }'
}

ktap_header
ktap_plan 49

# --- 1. Churn: rows are freed when processes end, so nothing fills up.
p0=$(forks_since_boot)
now
T0=$NOW
OUT=$($L churn "$CHURN" --spawn 2>&1)
ST=$?
since "$T0"
created=$(($(forks_since_boot) - p0))
ktap_info "churn: $CHURN processes in $SECS s"
expect_checks churn_workers_ok
[ "$created" -ge "$CHURN" ] && [ "$CHURN" -ge 100000 ]
ktap_result $? "churn_created_100000_processes" \
	"processes created during the churn (/proc/stat): $created, asked $CHURN (>= 100000)"
procs=$(cat /proc/cowstat/procs)
n_other=$(echo "$procs" | grep -c ' <other> ')
ktap_expect_eq "churn_no_other_row" 0 "$n_other"
n_live=$(echo "$procs" | grep -c ' L$')
[ "$n_live" -lt 100 ]
ktap_result $? "churn_live_rows_below_100" "live rows: $n_live"
n_exited=$(echo "$procs" | grep -c ' X$')
[ "$n_exited" -le 1024 ]
ktap_result $? "churn_exited_rows_at_most_1024" "exited rows: $n_exited"
out=$(cow-demo fork --heap 16M --pages 1021 2>&1)
st=$?
echo "$out" | grep -E '^(verdict|MISMATCH|note)' | sed 's/^/# /'
ktap_expect_eq "churn_then_fork_k1021_exact" "0 1021" "$st $(observed "$out" cow_copies child)"

# --- 3. A child's final row, read after waitpid (procs and pid).
OUT=$($L final --pages 1021 2>&1)
ST=$?
expect_checks final_procs final_pidfile

# --- 4. self: exact for a process that wrote K pages.
OUT=$($L self --pages 769 2>&1)
ST=$?
expect_checks self_copies_faults_delta self_vs_smaps_pagemap self_state_pid \
	self_equals_pid_file self_equals_procs self_child_status

# --- 2. Pid reuse. A small pid space (pid_max 1000; live processes above
# it keep their pids) makes pids come round within a few hundred process
# creations.
old_max=$(cat /proc/sys/kernel/pid_max)
echo 1000 >/proc/sys/kernel/pid_max
now
T0=$NOW
OUT=$($L reuse --k1 2003 --k2 521 2>&1)
ST=$?
since "$T0"
echo "$old_max" >/proc/sys/kernel/pid_max
ktap_info "pid reuse: $SECS s with pid_max 1000 (was $old_max)"
expect_checks reuse_a_final_row reuse_b_got_a_pid reuse_b_not_inherited \
	reuse_b_before_write reuse_b_live_pid_file reuse_procs_live_and_old \
	reuse_b_final_pid_file reuse_procs_both_final
ktap_expect_eq "pid_max_restored" "$old_max" "$(cat /proc/sys/kernel/pid_max)"

# --- 5. A new pid namespace sees its own processes only, numbered its way.
# This shell has a row (it has forked and written since); inside, its pid
# means nothing.
outside=$($L pidrow $$)
case $outside in L:*) ok=0 ;; *) ok=1 ;; esac
ktap_result $ok "pidns_outside_pid_has_row_outside" "pid $$ here: $outside"
OUT=$(unshare -p -f --mount-proc $L pidns --outside $$ 2>&1)
ST=$?
expect_checks pidns_init_is_pid_1 pidns_procs_lists_only_ns pidns_child_row_ns_pid \
	pidns_self_pid pidns_pid_file_1_is_self pidns_outside_pid_esrch

# --- 6. Who may reset: CAP_SYS_ADMIN in the initial user namespace, checked
# at write time. A live sentinel process's row shows whether a reset happened.
S=$($L hold 37)
row0=$($L pidrow "$S")
ktap_info "sentinel $S: $row0"
ktap_expect_eq "reset_nonroot_open_eacces" EACCES \
	"$(as_nobody "$L try-write /proc/cowstat/stats 0")"
ktap_expect_eq "reset_nonroot_root_fd_eperm" EPERM \
	"$(as_nobody "$L try-write fd:3 0" 3>/proc/cowstat/stats)"
ktap_expect_eq "reset_userns_root_fd_eperm" EPERM \
	"$(unshare -U -r $L try-write fd:3 0 3>/proc/cowstat/stats)"
ktap_expect_eq "reset_userns_open_eperm" EPERM \
	"$(unshare -U -r $L try-write /proc/cowstat/stats 0)"
ktap_expect_eq "reset_refused_row_unchanged" "$row0" "$($L pidrow "$S")"
r=$($L try-write /proc/cowstat/stats 0)
ktap_expect_eq "reset_root_zeroes_rows" "ok L:0,0,0,0,0" "$r $($L pidrow "$S")"
kill "$S"

# --- 7. Resets while processes fault: no row ever shows more copies than
# faults (wp_attempts, not in procs, may lag by design). First with
# long-lived writers only (zero-page faults, again and again: resets alone),
# then with writers whose children copy pages and end (rows are also
# released and reused under the reader).
storm() { # TAG ARGS...
	tag=$1
	shift
	now
	T0=$NOW
	OUT=$($L storm "$@" 2>&1)
	ST=$?
	since "$T0"
	ktap_info "storm ($tag): $SECS s"
	OUT=$(echo "$OUT" | sed "s/^check storm_/check storm_${tag}_/")
	expect_checks "storm_${tag}_rows_copies_le_faults" "storm_${tag}_stats_copies_le_faults" \
		"storm_${tag}_ran"
}
storm long_lived --secs 8 --writers 4 --pages 64 --zero-page
storm ending --secs 8 --writers 4 --pages 64

# --- 8. More live processes than the table's 4096 slots: 4500 children
# that each copy one page and stay alive. Those without a slot go to
# <other>, one fault and one copy each; the global counters stay the sum of
# all rows; the rows are freed when the children end.
now
T0=$NOW
OUT=$($L overflow --procs 4500 2>&1)
ST=$?
since "$T0"
ktap_info "overflow: $SECS s"
expect_checks overflow_children_ready overflow_child_rows_exact overflow_children_spilled \
	overflow_other_holds_spilled overflow_stats_equal_sum_of_rows overflow_released_rows_freed

problems=$(kernel_log_problems)
if [ -z "$problems" ]; then
	ktap_result 0 "no_kernel_warnings"
else
	ktap_result 1 "no_kernel_warnings" "$problems"
fi
ktap_finished
