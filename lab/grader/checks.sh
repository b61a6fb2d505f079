#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Lab exercise 9 grader, guest half: runs known copy-on-write workloads
# against the loaded cowstat.ko and checks its counters. Run by lab/grade
# (host) inside `scripts/vm-run --module STUDENT.ko`; needs cow-demo and
# cowlab in PATH. Prints one PASS/FAIL line per check, hints for failures,
# and "grade: N of M checks passed"; exits 0 only if all passed.

pass=0 total=0 failed=""
out=/tmp/grade.out

result() { # NAME OK(0/1) MESSAGE [HINT...]
	name=$1 ok=$2 msg=$3
	shift 3
	total=$((total + 1))
	if [ "$ok" = 0 ]; then
		pass=$((pass + 1))
		echo "PASS $total $name: $msg"
	else
		failed="$failed $name"
		echo "FAIL $total $name: $msg"
		for h in "$@"; do echo "     hint: $h"; done
	fi
}

# cowlab_field NAME: a counter from cowlab's window line in $out.
cowlab_field() { sed -n "s/.* $1 \([0-9]*\).*/\1/p" "$out" | head -1; }
# demo_row NAME: "parent-exp parent-obs child-exp child-obs" from cow-demo.
demo_row() { sed -n "s/^$1  *//p" "$out" | head -1; }
demo_ok() { grep -q '^verdict: OK' "$out"; }

echo "cowstat lab grader: checking the loaded module with 7 known workloads"

st=$(sed -n 's/^\(do_wp_page\|ptep_clear_flush\|ptep_set_access_flags\|do_huge_pmd_wp_page\) .* \(active\|missing\) .*/\1=\2/p' \
	/proc/cowstat/probes 2>/dev/null | tr '\n' ' ')
case $st in
*do_wp_page=active*ptep_clear_flush=active*ptep_set_access_flags=active*do_huge_pmd_wp_page=active*)
	result probes_attached 0 "the four fault hooks are active" ;;
*)
	result probes_attached 1 "probes file says: ${st:-nothing (is /proc/cowstat there?)}" \
		"the module must attach do_wp_page, ptep_clear_flush," \
		"ptep_set_access_flags and do_huge_pmd_wp_page" ;;
esac

cow-demo fork --heap 8M --pages 23 >"$out" 2>&1
demo_ok
result fork_child_copies $? "child writes 23 shared pages: child cow_copies/wp_faults = $(demo_row cow_copies | awk '{print $4}')/$(demo_row wp_faults | awk '{print $4}') (expected 23/23)" \
	"each write to a page shared after fork() enters do_wp_page (one wp_fault)," \
	"then wp_page_copy installs a copy of the anonymous page with" \
	"ptep_clear_flush (one cow_copy): Event::CowCopy"

cow-demo fork --heap 8M --pages 23 --write-after-exit >"$out" 2>&1
demo_ok
result reuse_after_exit $? "parent writes after the child exited: parent wp_reuses/cow_copies = $(demo_row wp_reuses | awk '{print $2}')/$(demo_row cow_copies | awk '{print $2}') (expected 23/0)" \
	"a page mapped by one process only is reused in place: wp_page_reuse" \
	"calls ptep_set_access_flags on a private VMA, Event::WpReuse" \
	"(LAB TODO 2 in lab/starter/hooks.rs)"

cowlab fresh 23 --read-first >"$out" 2>&1
z=$(cowlab_field cow_zero) c=$(cowlab_field cow_copies) f=$(cowlab_field wp_faults)
[ "$z/$c/$f" = 23/0/23 ]
result zero_page $? "read, then write 23 fresh pages: cow_zero/cow_copies/wp_faults = $z/$c/$f (expected 23/0/23)" \
	"the first read maps the shared zero page; the write goes through" \
	"wp_page_copy, whose PTE maps the zero pfn (glue::SRC_ZERO): that is" \
	"Event::CowZero, not a copy (LAB TODO 1 in lab/starter/hooks.rs)"

cowlab fresh 23 >"$out" 2>&1
z=$(cowlab_field cow_zero) c=$(cowlab_field cow_copies) f=$(cowlab_field wp_faults)
[ "$z/$c/$f" = 0/0/0 ]
result fresh_write_no_cow $? "write 23 fresh pages: cow_zero/cow_copies/wp_faults = $z/$c/$f (expected 0/0/0)" \
	"a write to a page that is not present is do_anonymous_page, not a" \
	"write-protect fault: none of the COW counters may move"

cow-demo fork --heap 8M --pages 23 --thp on --pattern stride:256 >"$out" 2>&1
demo_ok
result thp_split $? "child writes 23 pages in 4 shared huge pages: child thp_wp_faults/cow_copies = $(demo_row thp_wp_faults | awk '{print $4}')/$(demo_row cow_copies | awk '{print $4}') (expected 4/23)" \
	"the first write into a shared huge page enters do_huge_pmd_wp_page" \
	"(one thp_wp_fault per huge page), which splits it with" \
	"__split_huge_pmd (Event::ThpSplit); then 4 KiB COW"

cow-demo fork --heap 8M --pages 23 --thp on --pattern stride:256 --write-after-exit >"$out" 2>&1
demo_ok
result thp_reuse $? "parent writes 4 huge pages after the child exited: parent thp_wp_faults/wp_faults = $(demo_row thp_wp_faults | awk '{print $2}')/$(demo_row wp_faults | awk '{print $2}') (expected 4/0)" \
	"an unshared huge page is reused whole at PMD level: one" \
	"thp_wp_fault per huge page, no 4 KiB faults: pmdp_set_access_flags" \
	"called from do_huge_pmd_wp_page is Event::ThpReuse (LAB TODO 3)"

echo "grade: $pass of $total checks passed"
if [ "$pass" = "$total" ]; then
	echo "grade: PASS"
	exit 0
fi
echo "grade: FAIL (failed:$failed)"
exit 1
