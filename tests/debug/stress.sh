#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Reliability lane (make test-debug), inside the debug-kernel VM: load and
# unload under fire, overflow the process table, bad input, OOM, failing
# forks and failing module init. KTAP. Each part is bounded in time and
# iterations. Usage: stress.sh [RELOADS] [SECONDS]
. "$(dirname "$0")/../lib/ktap.sh"
. "$(dirname "$0")/../guest/cowstat-lib.sh"
. "$(dirname "$0")/kmemleak-lib.sh"
KO=${COWSTAT_KO:-/lib/cowstat/cowstat.ko}
P=/proc/cowstat
RELOADS=${1:-200}
SECONDS_MANY=${2:-30}

ktap_header
ktap_plan 19
# A diagnostic line with the guest's uptime at the start of each part.
part() { echo "# part $1 (uptime $(cut -d' ' -f1 /proc/uptime) s)"; }

# --- 1. insmod/rmmod cycles while probes fire and files are read ---
part "1: insmod/rmmod cycles while probes fire and files are read"
start_load 2 1
reload_cycles "$RELOADS" "$KO"
stop_load
ktap_expect_eq "reload_${RELOADS}_cycles_under_load" 0 "$RELOAD_FAILS"
ktap_expect_eq "module_loaded_after_cycles" 1 "$(lsmod | grep -c '^cowstat ')"
# Load and unload are where a leak would come from: scan now, while
# nothing has yet pressed kmemleak's own allocations.
kmemleak_check "kmemleak_after_reloads"

# --- 2. more live processes than the table holds, then load on it ---
part "2: more live processes than the table holds, then load on the full table"
# cowstat-lifecycle overflow: 4500 live children (the table has 4096
# slots) each copy one page; it checks their rows, <other> and the totals
# exactly while nothing else runs, then holds them until its stdin closes.
# Meanwhile shell spawners churn for SECONDS_MANY seconds (their rows take
# the slots freed under them or go to <other>), procs is read in a loop, and
# cow-demo must explain the full table. KASAN at 32 KiB stacks in 1 GiB
# caps threads-max near 4096: raise it for the run.
old_threads=$(cat /proc/sys/kernel/threads-max)
echo 20000 >/proc/sys/kernel/threads-max
# Fifos, not polling: a process started while the table fills would take
# an event and spill into <other> too.
rm -f /tmp/overflow.in /tmp/overflow.out
mkfifo /tmp/overflow.in /tmp/overflow.out
cowstat-lifecycle overflow --procs 4500 --hold </tmp/overflow.in >/tmp/overflow.out 2>&1 &
holder=$!
exec 3>/tmp/overflow.in 4</tmp/overflow.out
OUT=
while IFS= read -r line <&4; do
	OUT="$OUT$line
"
	case $line in "# holding"*) break ;; esac
done
end=$(($(date +%s) + SECONDS_MANY))
spawner() {
	while [ "$(date +%s)" -lt "$end" ]; do sh -c ':'; done
}
reader() {
	while [ "$(date +%s)" -lt "$end" ]; do cat $P/procs $P/stats >/dev/null; done
}
spawner 3>&- 4<&- &
spawner1=$!
spawner 3>&- 4<&- &
spawner2=$!
reader 3>&- 4<&- &
reader1=$!
# Regression: cow-demo once failed outright here ("file larger than the
# reserved buffer"). With a full table it must read all rows, report a
# mismatch (its processes are in <other>) and say why.
out=$(cow-demo fork --heap 4M --pages 23 2>&1 3>&- 4<&-)
st=$?
case $out in *"table is full"*) note=1 ;; *) note=0 ;; esac
wait "$spawner1" "$spawner2" "$reader1"
exec 3>&- # the helper's stdin ends: it releases the children
OUT="$OUT$(cat <&4)"
exec 4<&-
wait "$holder"
ST=$?
echo "$old_threads" >/proc/sys/kernel/threads-max
expect_checks overflow_children_ready overflow_child_rows_exact overflow_children_spilled \
	overflow_other_holds_spilled overflow_stats_equal_sum_of_rows overflow_released_rows_freed
ktap_expect_eq "cow_demo_explains_full_table" "1 1" "$st $note"
# Every counter column (found by the header's names) is a plain number
# of at most 15 digits: nothing negative or wrapped after the churn.
wrapped=$(awk 'NR == 1 { for (i = 1; i <= NF; i++) if ($i != "pid" && $i != "comm" && $i != "S") num[i] = 1; next }
	{ for (i in num) if ($i !~ /^[0-9]+$/ || length($i) > 15) bad++ } END { print bad + 0 }' $P/procs)
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

# --- 4. a process OOM-killed in the middle of COW (memory cgroup) ---
part "4: a process OOM-killed in the middle of COW (memory cgroup)"
echo 0 >$P/stats
# In a memory cgroup without swap: the parent's 96M heap plus the child's
# copies need ~192M of a 128M limit, so the group's OOM killer must act
# (it picks the parent or the child: both hold ~96M).
# (A global OOM also starves kmemleak's own allocations, and kmemleak then
# switches itself off for the rest of the boot: the final leak scan would
# have nothing to scan.)
heap=96M
CG=/sys/fs/cgroup/cowstat-oom
oom_kills=0
if mkdir -p $CG && echo 128M >$CG/memory.max && echo 0 >$CG/memory.swap.max; then
	sh -c "echo \$\$ >$CG/cgroup.procs && exec cow-demo fork --heap $heap --write 100% --json" >/dev/null 2>/tmp/oom.err
	st=$?
	# The group's own count: earlier suites' memcg tests leave OOM lines in dmesg.
	oom_kills=$(sed -n 's/^oom_kill //p' $CG/memory.events)
	i=0
	while [ -n "$(cat $CG/cgroup.procs)" ] && [ $i -lt 30 ]; do sleep 1; i=$((i + 1)); done
	rmdir $CG
	ktap_info "cow-demo with a $heap heap in $CG (memory.max 128M, no swap), child rewriting all of it: exit status $st ($(tail -1 /tmp/oom.err))"
else
	ktap_info "could not set up the memory cgroup $CG (cgroup v2 with the memory controller and swap accounting?)"
fi
[ "${oom_kills:-0}" -ge 1 ]
ktap_result $? "oom_kill_happened" "memory.events oom_kill: ${oom_kills:-none}"
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
