#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Unloading is always safe: 100 rmmod/insmod cycles while processes fork,
# write and read every /proc/cowstat file (KTAP). The debug lane repeats
# this 200 times on a KASAN/lockdep kernel (tests/debug/stress.sh).
. "$(dirname "$0")/../lib/ktap.sh"
. "$(dirname "$0")/cowstat-lib.sh"
KO=${COWSTAT_KO:-/lib/cowstat/cowstat.ko}

ktap_header
ktap_plan 3
# One forker and one reader keep probes and files busy without starving
# the RCU grace periods every unload waits for (3+2 takes ~2 s a cycle).
start_load 1 1
reload_cycles 100 "$KO"
stop_load
ktap_expect_eq "reload_100_cycles_under_fork_write_load" 0 "$RELOAD_FAILS"
[ -r /proc/cowstat/stats ] && lsmod | grep -q '^cowstat '
ktap_result $? "module_loaded_and_working_after_cycles"
bad=$(kernel_log_problems)
ktap_result "$([ -z "$bad" ] && echo 0 || echo 1)" "no_oops_warning_or_bug" ${bad:+"$bad"}
ktap_finished
