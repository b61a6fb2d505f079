#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Reliability lane (make test-debug), inside the debug-kernel VM: load and
# unload under fire, overflow the process table, bad input, OOM, failing
# forks and failing module init. KTAP. Each part is bounded in time and
# iterations. Usage: stress.sh [RELOADS] [SECONDS]
. "$(dirname "$0")/../lib/ktap.sh"
. "$(dirname "$0")/../guest/cowstat-lib.sh"
KO=${COWSTAT_KO:-/lib/cowstat/cowstat.ko}
P=/proc/cowstat
RELOADS=${1:-200}
SECONDS_MANY=${2:-30}

ktap_header
ktap_plan 14
# A diagnostic line with the guest's uptime at the start of each part.
part() { echo "# part $1 (uptime $(cut -d' ' -f1 /proc/uptime) s)"; }

# --- 1. insmod/rmmod cycles while probes fire and files are read ---
part "1: insmod/rmmod cycles while probes fire and files are read"
start_load 2 1
reload_cycles "$RELOADS" "$KO"
stop_load
ktap_expect_eq "reload_${RELOADS}_cycles_under_load" 0 "$RELOAD_FAILS"
ktap_expect_eq "module_loaded_after_cycles" 1 "$(lsmod | grep -c '^cowstat ')"

# --- 2. more processes than the table holds, for a bounded time ---
part "2: more processes than the table holds, for a bounded time"
# cowstat-bench fill forks 4500 children that each copy a page: more than
# the 4096 slots, so the last ones must land in <other>. Shell spawners
# run alongside for SECONDS_MANY seconds.
echo 0 >$P/stats
end=$(($(date +%s) + SECONDS_MANY))
spawner() {
	while [ "$(date +%s)" -lt "$end" ]; do sh -c ':'; done
}
for i in 1 2; do spawner & done
cowstat-bench fill --procs 4500 >/dev/null
wait
rows=$(($(wc -l <$P/procs) - 1))
other=$(grep -c '^ *- <other>' $P/procs)
ktap_info "rows after filling: $rows (other row: $other)"
[ "$rows" -gt 4000 ] && [ "$other" = 1 ]
ktap_result $? "table_overflows_into_other_row" "rows $rows, <other> rows $other"
# Regression: cow-demo once failed outright here ("file larger than the
# reserved buffer"). With a full table it must read all rows, report a
# mismatch (its processes are in <other>) and say why.
out=$(cow-demo fork --heap 4M --pages 23 2>&1)
st=$?
case $out in *"table is full"*) note=1 ;; *) note=0 ;; esac
ktap_expect_eq "cow_demo_explains_full_table" "1 1" "$st $note"
# Global counters equal the sum of rows (including <other>). One cat reads
# both files back to back, so no other process runs in between.
cat $P/procs $P/stats >/tmp/snap
sum_ok=1
for col in 3 4 5; do
	name=$(head -1 /tmp/snap | awk -v c=$col '{ print $c }')
	sum=$(awk -v c=$col 'NR > 1 && $1 !~ /^[a-z_]+$/ { s += $c } END { print s + 0 }' /tmp/snap)
	global=$(awk -v n="$name" '$1 == n && NF == 2 { print $2 }' /tmp/snap)
	[ "$sum" = "$global" ] || { sum_ok=0; ktap_info "$name: rows sum $sum, stats $global"; }
done
ktap_expect_eq "global_equals_sum_of_rows_and_other" 1 "$sum_ok"
wrapped=$(awk 'NR > 1 { for (i = 3; i <= NF; i++) if ($i !~ /^[0-9]+$/ || length($i) > 15) bad++ } END { print bad + 0 }' $P/procs)
ktap_expect_eq "no_negative_or_wrapped_values" 0 "$wrapped"

# --- 3. bad input (fixed seed, bounded) ---
part "3: bad input (fixed seed, bounded)"
cowstat-fuzz 10000 >/tmp/fuzz.out; st=$?; sed "s/^/    /" /tmp/fuzz.out
ktap_result $st "fuzz_suite_passes"
stat_read forks
f0=$STAT
out=$(as_nobody "cat $P/stats >/dev/null && echo 0 > $P/stats" 2>&1)
stat_read forks
[ "$STAT" -ge "$f0" ] && [ "$STAT" -gt 0 ]
ktap_result $? "non_root_reads_but_cannot_reset" "$out"

# --- 4. a child OOM-killed in the middle of COW ---
part "4: a child OOM-killed in the middle of COW"
echo 0 >$P/stats # the table is full from part 2; start this part with room
# The VM for this lane has little memory: a child rewriting most of a heap
# that fills it cannot get its copies and is killed by the OOM killer.
# 70% of MemAvailable: the parent's heap plus the child's copies need
# 140% of it, so the OOM killer must act; the rest keeps cow-demo's own size
# check (which reads MemAvailable again a moment later) from refusing it.
heap=$(awk '/^MemAvailable:/ { print int($2 * 0.7 / 1024) "M" }' /proc/meminfo)
cow-demo fork --heap "$heap" --write 100% --json >/dev/null 2>/tmp/oom.err
st=$?
err=$(tail -1 /tmp/oom.err)
ktap_info "cow-demo with a $heap heap, child rewriting all of it: exit status $st ($err)"
dmesg | grep -q 'Out of memory\|oom-kill' 
ktap_result $? "oom_kill_happened"
cat $P/stats >/dev/null && cat $P/procs >/dev/null
ktap_result $? "files_readable_after_oom"

# --- 5. forks that fail (RLIMIT_NPROC, and dup_mmap failing under failslab) ---
part "5: forks that fail (RLIMIT_NPROC, and dup_mmap failing under failslab)"
# A control run without the limit counts the forks of the wrapper (su and
# its helpers) plus the 5 of the loop; with `ulimit -u 0` the loop's forks
# fail in copy_process and only the wrapper's are counted.
echo 0 >$P/stats
as_nobody 'for i in 1 2 3 4 5; do sh -c : 2>/dev/null; done; exit 0'
stat_read forks
control=$STAT
echo 0 >$P/stats
as_nobody 'ulimit -u 0; for i in 1 2 3 4 5; do sh -c : 2>/dev/null; done; exit 0'
stat_read forks
ktap_expect_eq "rlimit_nproc_failed_forks_not_counted" "$((control - 5))" "$STAT"

# --- 6. module init failing part-way (failslab), then a clean load ---
part "6: module init failing part-way (failslab), then a clean load"
rmmod cowstat
FS=/sys/kernel/debug/failslab
leftovers=0
loaded=0
if [ -d $FS ]; then
	echo 100 >$FS/probability
	echo -1 >$FS/times
	echo 0 >$FS/interval
	echo Y >$FS/task-filter 2>/dev/null
	# By default failslab only fails atomic allocations; init uses GFP_KERNEL.
	echo N >$FS/ignore-gfp-wait
	echo 0 >$FS/verbose
	for space in 0 64 256 1024 4096 16384 65536 262144; do
		echo $space >$FS/space
		# make-it-fail applies to this shell's children only
		sh -c "echo 1 > /proc/self/make-it-fail; exec insmod $KO" 2>/dev/null && loaded=$((loaded + 1))
		if lsmod | grep -q '^cowstat '; then
			rmmod cowstat
		elif [ -e $P ] || grep -q 'cowstat' /sys/kernel/debug/kprobes/list 2>/dev/null ||
			grep -q 'cowstat' /sys/kernel/debug/tracing/enabled_functions 2>/dev/null; then
			leftovers=$((leftovers + 1))
		fi
	done
	echo 0 >$FS/probability
fi
ktap_info "failslab insmods that still succeeded: $loaded of 8"
ktap_expect_eq "failed_init_leaves_nothing" 0 "$leftovers"
insmod "$KO" && [ -r $P/stats ]
ktap_result $? "insmod_after_failed_inits_works"

bad=$(kernel_log_problems)
ktap_result "$([ -z "$bad" ] && echo 0 || echo 1)" "kernel_log_clean" ${bad:+"$bad"}
ktap_finished
