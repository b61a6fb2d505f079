#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# After the stress suite: unload the module, scan for leaks, report KTAP.
. "$(dirname "$0")/../lib/ktap.sh"
. "$(dirname "$0")/kmemleak-lib.sh"
ktap_header
ktap_plan 1
rmmod cowstat 2>/dev/null
kmemleak_check "kmemleak_no_cowstat_leaks"
ktap_finished
