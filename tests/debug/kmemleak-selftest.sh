#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Does the lane's kmemleak check fail when there is a leak? Load a module
# that leaks 7 objects (tests/debug/plant-leak), unload it, and run the
# same kmemleak_check the lane runs: it must say "not ok" and count all 7
# (a fresh boot has no other unreferenced object: lane g's scan after 200
# reloads found 0).
# Run by `scripts/test-debug` (every lane, or alone with --plant-leak) in a
# boot of its own: the planted objects would stay in every later scan.
. "$(dirname "$0")/../lib/ktap.sh"
. "$(dirname "$0")/kmemleak-lib.sh"
ktap_header
ktap_plan 4
insmod "$1" && rmmod cowstat_plant_leak
ktap_expect_eq "planted_module_loaded_and_unloaded" 0 $?
# kmemleak reports an object only once it is older than 5 s (min_age).
sleep 6
verdict=$(kmemleak_check planted_leak)
echo "$verdict" | sed 's/^/# the lane check said: /'
case $verdict in *"not ok "*" - planted_leak"*) st=0 ;; *) st=1 ;; esac
ktap_result $st "lane_check_fails_on_planted_leak"
found=$(echo "$verdict" | sed -n 's/^# kmemleak: \([0-9]*\) unreferenced objects$/\1/p')
ktap_expect_eq "planted_objects_counted" 7 "$found"
# The lane also counts this console line among the kernel complaints.
said=$(dmesg | sed -n 's/.*kmemleak: \([0-9]*\) new suspected memory leaks.*/\1/p' | tr '\n' ' ')
ktap_expect_eq "dmesg_reports_the_new_leaks" "7 " "$said"
ktap_finished
