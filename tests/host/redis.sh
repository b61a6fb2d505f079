#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Real Redis in the test VM (one boot, ~20 s): BGSAVE of 150000 keys while a
# client overwrites 2 % of them. Checks that the save completes, that the
# dump is the fork-time data set, and that Redis's rdb_last_cow_size agrees
# with cowstat's copies within 10 %, and that the kernel's delay accounting
# (taskstats wpcopy_count) of the BGSAVE child equals cowstat's child
# copies + zero-page breaks (bounds explained in docs/redis.md), and that
# cow-demo map's picture of the parent's heap is within cowstat's copies.
# KTAP output. demo-redis installs Redis with apt if missing; if that
# fails, the scenario test fails with its one-line error.
set -uo pipefail
cd "$(dirname "$0")/../.."
source tests/lib/ktap.sh

ktap_header
ktap_plan 10

out=$(scripts/demo-redis --bogus 2>&1); st=$?
[[ $st == 2 && $(wc -l <<<"$out") == 1 && $out == *"'--bogus'"* ]]
ktap_result $? "demo_redis_unknown_flag_one_line_error" "status $st: $out"

out=$(scripts/demo-redis --write 150 2>&1); st=$?
[[ $st == 2 && $(wc -l <<<"$out") == 1 && $out == *"percentage"* ]]
ktap_result $? "demo_redis_bad_percentage_one_line_error" "status $st: $out"

start=$SECONDS
# 150000 keys make a save of ~3 s; 2 % of them (3000 writes, ~0.5 s) land
# inside it with room to spare even on a loaded host (60000 keys, ~1.5 s,
# once let the save finish first).
json=$(scripts/demo-redis --mem 512M --keys 150000 --write 2 --rate 1000000 \
	--scenarios 2 --json 2>/dev/null); st=$?
ktap_info "scenario took $((SECONDS - start)) s; JSON: $json"
[[ $st == 0 ]]
ktap_result $? "scenario_2_exits_0" "status $st"

# check NAME PYTHON-EXPRESSION (on the scenario object `s`)
check() {
	python3 -c 'import json, sys
s = json.loads(sys.argv[1].splitlines()[0])
sys.exit(0 if eval(sys.argv[2]) else 1)' "$json" "$2" 2>/dev/null
	ktap_result $? "$1" "$2"
}
check bgsave_completed_with_one_fork \
	's["cowstat"]["forks"] == 1 and s["cowstat"]["child"]["pid"] > 0'
check writes_all_landed_during_the_save \
	's["writes"] == 3000 and s["writes_during_save"]'
check dump_equals_fork_time_data_set 's["snapshot_exact"]'
# An overwrite dirties the page holding the value and often the one holding
# its key/dict entry; 3000 random keys of 150000 (~22 MB of data) rarely
# share pages, so the parent copies thousands of pages but at most about
# two per write plus a few hundred for serverCron and buffers (measured:
# 5358). Fewer than 200 would mean writes were not counted.
check parent_copied_hundreds_of_pages \
	'200 <= s["cowstat"]["parent"]["cow_copies"] <= 2 * 3000 + 1000'
check redis_cow_size_within_10pct_of_cowstat \
	'0.9 <= s["redis"]["rdb_last_cow_size"] / (4096 * s["child_private_pages"]) <= 1.1'

# Third witness: delay accounting counts every wp_page_copy() of the task,
# cowstat classifies the same calls as cow_copies, cow_zero or cow_unshare.
# The child is single-threaded, lives inside the measured window and pins
# no pages (no unshare), so the two must be equal, not just close.
check child_wpcopy_count_equals_cowstat_copies_plus_zero \
	's["taskstats"]["child"]["pid"] == s["cowstat"]["child"]["pid"] and s["taskstats"]["child"]["wpcopy_count"] == s["cowstat"]["child"]["cow_copies"] + s["cowstat"]["child"]["cow_zero"]'

# cow-demo map --pid watched the parent's largest anonymous VMA from before
# the fork until the child exited: every page it shows copied by the parent
# is one of cowstat's parent copies (the rest are in other VMAs), and 2 %
# of the keys, spread over the data set, copy pages in that VMA.
check map_parent_copies_within_cowstat \
	's["map"]["verdict"] == "OK" and 100 <= s["map"]["events"]["parent"]["copies"] <= s["map"]["cowstat"]["parent"]["cow_copies"] and s["map"]["child_pid"] == s["cowstat"]["child"]["pid"]'

ktap_finished
