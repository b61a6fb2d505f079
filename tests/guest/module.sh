#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# In-VM tests of the cowstat module's lifecycle and /proc interface (KTAP).
# Run by scripts/run-tests inside the test VM, with cowstat loaded at boot.
. "$(dirname "$0")/../lib/ktap.sh"
. "$(dirname "$0")/cowstat-lib.sh"
KO=${COWSTAT_KO:-/lib/cowstat/cowstat.ko}
P=/proc/cowstat

ktap_header
ktap_plan 19

# --- the files and their modes ---
modes=""
for f in stats procs probes fork_latency; do
	modes="$modes $f:$(stat -c %a $P/$f 2>/dev/null || echo none)"
done
ktap_expect_eq "proc_files_and_modes" " stats:644 procs:444 probes:444 fork_latency:444" "$modes"

names=$(cut -d' ' -f1 $P/stats | tr '\n' ' ')
ktap_expect_eq "stats_counter_names" "wp_faults cow_copies cow_zero wp_reuses wp_shared cow_unshare thp_wp_faults forks fork_ns " "$names"

for fn in do_wp_page wp_page_copy do_huge_pmd_wp_page dup_mmap; do
	st=$(awk -v f=$fn '$1 == f { print $3 }' $P/probes)
	ktap_expect_eq "probe_${fn}_active" active "$st"
done

hdr=$(head -1 $P/procs | tr -s ' ')
ktap_expect_eq "procs_header" " pid comm wp_faults cow_copies cow_zero wp_reuses thp_wp_faults" "$hdr"

# --- reset: only shell builtins between reset and read, so no fork happens ---
echo 0 >$P/stats
ktap_expect_eq "reset_zeroes_forks" 0 "$(stat_value forks)"

# --- counters rise when a forked child writes: a fork is counted ---
echo 0 >$P/stats
sh -c 'exit 0'
ktap_expect_eq "fork_counted_once" 1 "$(stat_value forks)"

# --- bad writes: EINVAL, and nothing is reset ---
sh -c 'exit 0'
before=$(stat_value forks)
bad_ok=0
for input in 1 00 " 0" "0 " x "0
0"; do
	if printf '%s' "$input" >$P/stats 2>/dev/null; then
		bad_ok=1
		ktap_info "write of '$input' was accepted"
	fi
done
ktap_expect_eq "bad_writes_rejected" 0 "$bad_ok"
long=$(printf '%0100d' 0)
printf '%s' "$long" >$P/stats 2>/dev/null
ktap_expect_eq "long_write_rejected" 1 "$?"
# A write at a non-zero offset (dd seeks the open file) is rejected.
echo 0 | dd of=$P/stats bs=1 seek=1 conv=notrunc 2>/dev/null
ktap_expect_eq "offset_write_rejected" 1 "$?"
ktap_expect_eq "bad_writes_keep_counters" "$before" "$(stat_value forks)"

err=$(chpst -u 1000:1000 sh -c "echo 0 > $P/stats" 2>&1)
case $err in *"ermission denied"*) r=0 ;; *) r=1 ;; esac
ktap_result $r "non_root_write_denied" "error: $err"
ktap_expect_eq "non_root_write_keeps_counters" "$before" "$(stat_value forks)"

# --- unload and reload ---
rmmod cowstat
[ ! -e $P ]
ktap_result $? "rmmod_removes_proc_dir"
lsmod | grep -q '^cowstat ' && r=1 || r=0
ktap_result $r "rmmod_unloads_module"
insmod "$KO"
[ -r $P/stats ] && [ "$(stat_value forks)" = 0 ]
ktap_result $? "reinsmod_starts_from_zero" "forks after reload: $(stat_value forks)"

# --- the kernel log stays clean ---
bad=$(dmesg | grep -E 'WARNING:|BUG:|Oops|panic|Call Trace' | head -5)
ktap_result "$([ -z "$bad" ] && echo 0 || echo 1)" "dmesg_clean" ${bad:+"$bad"}

ktap_finished
