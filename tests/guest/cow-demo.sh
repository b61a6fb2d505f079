#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# cow-demo's own acceptance runs in the VM (KTAP): exit status, verdict and
# the observed counts in its report table
# ("counter  parent-exp parent-obs child-exp child-obs").
. "$(dirname "$0")/../lib/ktap.sh"

# observed REPORT COUNTER parent|child
observed() {
	col=3
	[ "$3" = child ] && col=5
	echo "$1" | awk -v c="$2" -v k=$col '$1 == c && NF == 5 { print $k; exit }'
}

# explain STATUS REPORT: on a non-zero status, the report's verdict and
# mismatch lines and cow-demo's stderr as KTAP diagnostics.
explain() {
	[ "$1" = 0 ] && return
	{ echo "$2" | grep -E 'MISMATCH|verdict|note|differ'; cat /tmp/cow-demo.err; } |
		sed 's/^/# /'
}

ktap_header
ktap_plan 5

out=$(cow-demo fork --heap 64M --pages 4099 --thp off 2>/tmp/cow-demo.err)
st=$?
explain $st "$out"
ktap_expect_eq "fork_k4099_thp_off_child_copies" "0 4099" "$st $(observed "$out" cow_copies child)"

out=$(cow-demo fork --heap 64M --pages 4099 --thp off --write-after-exit 2>/tmp/cow-demo.err)
st=$?
explain $st "$out"
ktap_expect_eq "write_after_exit_parent_reuses_no_copies" "0 4099 0" \
	"$st $(observed "$out" wp_reuses parent) $(observed "$out" cow_copies parent)"

# thp_on_fork: the child writes pages 0..4098 of a THP heap; sets out, st.
thp_on_fork() {
	out=$(cow-demo fork --heap 64M --pages 4099 --thp on 2>/tmp/cow-demo.err)
	st=$?
}
# expect_nine_splits NAME: exit 0 and 4099 copies; the pages lie in 2 MiB
# regions 0..8, so nine huge-page faults (splits).
expect_nine_splits() {
	explain $st "$out"
	ktap_expect_eq "$1" "0 4099 9" \
		"$st $(observed "$out" cow_copies child) $(observed "$out" thp_wp_faults child)"
}

thp_on_fork
expect_nine_splits fork_k4099_thp_on_splits

# The same with khugepaged scanning every 100 ms instead of every 10 s: it
# collapses regions the child rewrote completely unless cow-demo keeps it off
# the heap (before that fix, 6 runs of 6 on Debian's 7.3 lost 3-7 of the 9
# splits in smaps). The counts and smaps must still agree exactly.
khp=/sys/kernel/mm/transparent_hugepage/khugepaged
if [ -w "$khp/scan_sleep_millisecs" ]; then
	saved="$(cat "$khp/scan_sleep_millisecs") $(cat "$khp/alloc_sleep_millisecs")"
	echo 100 >"$khp/scan_sleep_millisecs"
	echo 100 >"$khp/alloc_sleep_millisecs"
	thp_on_fork
	set -- $saved
	echo "$1" >"$khp/scan_sleep_millisecs"
	echo "$2" >"$khp/alloc_sleep_millisecs"
	expect_nine_splits fork_k4099_thp_on_exact_while_khugepaged_busy
else
	ktap_result 1 "fork_k4099_thp_on_exact_while_khugepaged_busy" \
		"$khp/scan_sleep_millisecs not writable: THP or khugepaged missing"
fi

out=$(cow-demo snapshot --json 2>/tmp/cow-demo.err)
st=$?
explain $st "$out"
case $(echo "$out" | tr -d ' \n') in *'"snapshot_exact":true'*) exact=1 ;; *) exact=0 ;; esac
ktap_expect_eq "snapshot_exact_while_parent_writes" "0 1" "$st $exact"
ktap_finished
