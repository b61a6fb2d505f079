#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# After the stress suite: unload the module, scan for leaks, report KTAP.
. "$(dirname "$0")/../lib/ktap.sh"
KML=/sys/kernel/debug/kmemleak
ktap_header
ktap_plan 1
rmmod cowstat 2>/dev/null
# Two scans: kmemleak reports an object only once it looked unreferenced
# in two consecutive scans.
echo scan >$KML
sleep 2
echo scan >$KML
leaks=$(grep -c 'unreferenced object' $KML)
ours=$(grep -B2 -A20 'unreferenced object' $KML | grep -c 'cowstat')
ktap_info "kmemleak: $leaks unreferenced objects in total, $ours with cowstat in their backtrace"
[ "$ours" = 0 ]
ktap_result $? "kmemleak_no_cowstat_leaks"
ktap_finished
