#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Copy-on-write behaviour that differs between Linux 6.12 (the project's
# kernel) and 7.x (Debian 13's stock kernel), measured on whichever kernel
# is booted (docs/kernel-differences.md). KTAP. Reads `uname -r` and
# asserts that kernel's behaviour; every check prints what it observed.
# Expected values are computed from the workload (K pages written, 16
# folios, 4 huge pages), not copied from a run. A kernel that is neither
# 6.12 nor 7.x gets its observations printed and the version-dependent
# checks reported as SKIP.
# Workloads: cowstat-kdiff (userspace-demo/src/bin/cowstat-kdiff.rs); it
# sets the THP sysfs knobs it needs and restores them.
. "$(dirname "$0")/../lib/ktap.sh"

K=23
rel=$(uname -r)
major=${rel%%.*}
minor=${rel#*.}
minor=${minor%%[!0-9]*}
if [ "$major" -ge 7 ]; then
	era=7x
elif [ "$major" = 6 ] && [ "$minor" = 12 ]; then
	era=612
else
	era=unknown
fi

# get OUTPUT NAME: the value of a `name value` line of cowstat-kdiff.
get() { echo "$1" | awk -v n="$2" '$1 == n { print $2; exit }'; }

# check NAME "LABEL:EXPECTED LABEL:EXPECTED..." OUTPUT
# One KTAP result: every LABEL (an output name) must have its value.
check() {
	name=$1 want=$2 o=$3
	st=0 diag=""
	for pair in $want; do
		label=${pair%%:*} exp=${pair#*:}
		obs=$(get "$o" "$label")
		mark=""
		[ "$obs" = "$exp" ] || { st=1; mark="   <-- differs"; }
		diag="$diag
$label: expected $exp, observed ${obs:-missing}$mark"
	done
	echo "$diag" | sed '1d; s/^/# /'
	ktap_result $st "$name"
}

# by_era NAME "6.12 expectations" "7.x expectations" OUTPUT
by_era() {
	case $era in
	612) check "$1" "$2" "$4" ;;
	7x) check "$1" "$3" "$4" ;;
	*)
		echo "$4" | grep -v '^#' | sed 's/^/# observed: /'
		KTAP_N=$((KTAP_N + 1))
		echo "ok $KTAP_N - $1 # SKIP no expectation recorded for kernel $rel"
		;;
	esac
}

# run ARGS...: cowstat-kdiff's output, with its status as a last line.
run() {
	out=$(cowstat-kdiff "$@" 2>&1)
	echo "$out
status $?"
}

ktap_header
ktap_plan 7
ktap_info "kernel $rel: expecting the $(case $era in 612) echo 6.12 ;; 7x) echo 7.x ;; *) echo unknown ;; esac) behaviour"

# 1. mTHP sizes offered for anonymous memory (hugepages-*kB/enabled).
T=/sys/kernel/mm/transparent_hugepage
sizes=$(for d in $T/hugepages-*kB; do
	[ -f "$d/enabled" ] && { s=${d##*/hugepages-}; echo "${s%kB}"; }
done | sort -n | tr '\n' ' ')
check mthp_sizes_offered_same_on_both "sizes:16_32_64_128_256_512_1024_2048" \
	"sizes $(echo $sizes | tr ' ' _)"

# 2-4. A heap of 16 PTE-mapped 64 kB folios, forked; the parent writes K
# pages. 7.x (CONFIG_MM_ID) reuses a large folio that only its mm maps;
# 6.12 never reuses a page of a large folio.
folios="status:0 mthp_anon_fault_alloc:16 folios_contiguous:16 parent_wrote:$K wp_faults:$K"
o=$(run mthp --size 64 --pages $K --case exit)
by_era mthp64_write_after_child_exit \
	"$folios cow_copies:$K wp_reuses:0 vmstat_pgreuse:0 pfn_unchanged:0" \
	"$folios cow_copies:0 wp_reuses:$K vmstat_pgreuse:$K pfn_unchanged:$K" "$o"

o=$(run mthp --size 64 --pages $K --case child-wrote)
by_era mthp64_write_after_child_copied_every_page \
	"$folios cow_copies:$K wp_reuses:0 vmstat_pgreuse:0 pfn_unchanged:0" \
	"$folios cow_copies:0 wp_reuses:$K vmstat_pgreuse:$K pfn_unchanged:$K" "$o"

# Control: while the child still maps the folios, both kernels copy.
o=$(run mthp --size 64 --pages $K --case alive)
check mthp64_write_child_alive_copies_on_both \
	"$folios cow_copies:$K wp_reuses:0 vmstat_pgreuse:0 pfn_unchanged:0" "$o"

# 5-6. PMD THPs: the parent's first write into each of 4 shared huge pages
# splits the PMD and copies 4 KiB (both kernels); after the child exits,
# K more writes into the now PTE-mapped huge pages: copies on 6.12, reuses
# on 7.x.
o=$(run thp-split-exit --pages $K)
check thp_write_after_fork_splits_on_both \
	"status:0 anon_huge_kb_before_fork:8192 phase1_thp_wp_faults:4 phase1_stats_thp_splits:4 phase1_cow_copies:4 phase1_anon_huge_kb_after:0" "$o"
by_era thp_split_then_child_exit_later_writes \
	"parent_wrote:$K wp_faults:$K cow_copies:$K wp_reuses:0 vmstat_pgreuse:0 pfn_unchanged:0" \
	"parent_wrote:$K wp_faults:$K cow_copies:0 wp_reuses:$K vmstat_pgreuse:$K pfn_unchanged:$K" "$o"

# 7. A write to the huge zero page (a 2 MiB THP region that was only read).
# 6.12 splits the PMD and breaks one 4 KiB zero page; 7.x allocates a whole
# new THP (do_huge_zero_wp_pmd), which cowstat counts as thp_zero.
zero="status:0 read_mapped_huge_zero_page:1 rss_kb_after_read:0 stats_thp_wp_attempts:1"
o=$(run huge-zero)
by_era huge_zero_page_write \
	"$zero thp_wp_faults:1 stats_thp_zero:0 stats_thp_splits:1 wp_faults:1 cow_zero:1 vmstat_thp_split_pmd:1 vmstat_thp_fault_alloc:0 rss_kb_after_write:4 anon_huge_kb_after_write:0 distinct_frames_after_write:2" \
	"$zero thp_wp_faults:1 stats_thp_zero:1 stats_thp_splits:0 wp_faults:0 cow_zero:0 vmstat_thp_split_pmd:0 vmstat_thp_fault_alloc:1 rss_kb_after_write:2048 anon_huge_kb_after_write:2048 distinct_frames_after_write:512" "$o"

ktap_finished
