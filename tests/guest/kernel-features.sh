#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The test kernel has what a stock distribution kernel has (issue 13;
# docs/kernel.md, "What a stock kernel has"), and the guest's /init set it
# up: swap on zram, KSM, userfaultfd, hugetlb, cgroup v2 with memory and
# pids, pid and user namespaces, PREEMPT_DYNAMIC, mTHP sizes, tracefs.
# KTAP. Leaves the VM as it found it.
. "$(dirname "$0")/../lib/ktap.sh"

ktap_header
ktap_plan 10

swaps=$(awk 'NR > 1 { print $1 }' /proc/swaps | tr '\n' ' ')
ktap_expect_eq "swap_on_zram" "/dev/zram0 " "$swaps"

[ -f /sys/kernel/mm/ksm/pages_shared ] && [ "$(cat /sys/kernel/mm/ksm/run)" = 0 ]
ktap_result $? "ksm_present_not_scanning" "run=$(cat /sys/kernel/mm/ksm/run 2>&1)"

[ -f /proc/sys/vm/unprivileged_userfaultfd ] && [ -c /dev/userfaultfd ]
ktap_result $? "userfaultfd_present"

echo 8 >/proc/sys/vm/nr_hugepages
total=$(awk '$1 == "HugePages_Total:" { print $2 }' /proc/meminfo)
echo 0 >/proc/sys/vm/nr_hugepages
ktap_expect_eq "hugetlb_reserves_8_pages" 8 "$total"

ktap_expect_eq "cgroup2_memory_pids_for_children" "memory pids" \
	"$(cat /sys/fs/cgroup/cgroup.subtree_control 2>&1)"

ktap_expect_eq "pid_namespace" 1 "$(unshare -p -f sh -c 'echo $$' 2>&1)"

unshare -U true
ktap_result $? "user_namespace"

case $(uname -v) in *PREEMPT_DYNAMIC*) st=0 ;; *) st=1 ;; esac
ktap_result $st "preempt_dynamic" "$(uname -v)"

sizes=""
for kb in 16 32 64 128 256 512 1024 2048; do
	[ -d /sys/kernel/mm/transparent_hugepage/hugepages-${kb}kB ] && sizes="$sizes ${kb}"
done
ktap_expect_eq "mthp_sizes" " 16 32 64 128 256 512 1024 2048" "$sizes"

grep -qx do_wp_page /sys/kernel/tracing/available_filter_functions
ktap_result $? "tracefs_mounted"

ktap_finished
