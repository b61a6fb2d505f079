# SPDX-License-Identifier: GPL-2.0
# Guest side of `make demo-redis` (scripts/demo-redis): Redis BGSAVE
# scenarios with Redis's own copy-on-write figures next to cowstat's exact
# counts and the kernel's delay accounting (cowstat-taskstats; the VM must
# be booted with `delayacct`, else the report says so and goes on without
# it). Runs under busybox ash in the test VM.
#
# usage: sh /lib/cowstat/redis-demo.sh [--keys N] [--value-size BYTES]
#          [--write PCT] [--rate KEYS_PER_S] [--big-size BYTES]
#          [--save-delay N] [--scenarios "1 2 3 4"] [--json FILE]
# --save-delay sets Redis's rdb-key-save-delay (see scripts/demo-redis) to
# stretch the save; --json appends one JSON object per scenario to FILE
# (e.g. /dev/ttyS1) instead of printing the text report.
. /lib/cowstat/redis-lib.sh

keys=300000 vsize=64 pct=5 rate=20000 big=$((8 << 20)) scenarios="1 2 3 4"
json="" delay=0 ts_told=""
while [ $# -gt 0 ]; do
	case $1 in
	--keys) keys=$2; shift 2 ;;
	--value-size) vsize=$2; shift 2 ;;
	--write) pct=${2%%%}; shift 2 ;;
	--rate) rate=$2; shift 2 ;;
	--big-size) big=$2; shift 2 ;;
	--scenarios) scenarios=$2; shift 2 ;;
	--save-delay) delay=$2; shift 2 ;;
	--json) json=$2; shift 2 ;;
	*) rs_fail "unknown option '$1'" ;;
	esac
done

say() { [ -n "$json" ] || echo "$@"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.2f MiB", b / 1048576 }'; }

# scenario S TITLE KIND: KIND is none, keys or bigkey. Sets sc_* results.
scenario() {
	s=$1 title=$2 kind=$3
	say ""
	say "=== scenario $s: $title"
	w=0
	case $kind in
	keys) w=$(rs_gen_writes "$RS_DIR/w$s" "$s" "$keys" "$pct" "$rate" "$vsize") ;;
	bigkey) rs_gen_bigkey_writes "$RS_DIR/w$s.00000" "$s" "$big"
		w=$(((big + 4095) / 4096)) ;;
	esac
	ppid=$(rs_info server process_id)
	echo 0 >/proc/cowstat/stats
	split0=$(vmstat_get thp_split_pmd)
	ahp0=$(smaps_kb "$ppid" AnonHugePages)
	digest_fork=$(rs debug digest)
	set -- $(cs_row "$ppid")
	pb_f=$1 pb_c=$2 pb_z=$3 pb_r=$4 pb_t=$5
	if [ -z "$ts_err" ]; then
		set -- $(ts_tgid "$ppid")
		tp0_n=$1 tp0_ns=$2
		ts_listen_start "$ppid"
	fi
	# Scenario 2 in text: cow-demo top samples the parent and the BGSAVE
	# child live (started before the measured window: it never forks).
	top_pid=""
	if [ -z "$json" ] && [ "$s" = 2 ]; then
		cow-demo top --comm redis-server 0.5 >"$RS_DIR/top.txt" 2>/dev/null &
		top_pid=$!
	fi
	read -r up0 _ </proc/uptime
	[ "$kind" = none ] || map_start "$s"
	rs_bgsave_measured
	case $bg_reply in "Background saving started") ;;
	*) rs_fail "BGSAVE refused: $bg_reply" ;; esac
	during=yes
	if [ "$kind" != none ]; then
		read -r wu0 _ </proc/uptime
		rs_run_writes "$RS_DIR/w$s"
		read -r wu1 _ </proc/uptime
		grep -q "errors: 0, replies: $w" "$RS_DIR/w$s.out" ||
			rs_fail "writer failed: $(tail -1 "$RS_DIR/w$s.out")"
		[ "$(rs_info persistence rdb_bgsave_in_progress)" = 1 ] || during=no
	fi
	rs_wait_save
	read -r up1 _ </proc/uptime
	# One more refresh shows the child's row ended; stopped in the
	# background so that the figures below are read at once.
	[ -z "$top_pid" ] || { sleep 0.6; kill "$top_pid"; } &
	[ "$kind" = none ] || map_result
	mv "$RS_DIR/dump.rdb" "$RS_DIR/dump-s$s.rdb"
	fork_us=$(rs_info stats latest_fork_usec)
	cow=$(rs_info persistence rdb_last_cow_size)
	save_s=$(awk -v a="$up0" -v b="$up1" 'BEGIN { printf "%.1f", b - a }')
	cpid=$(cs_child_pid "$ppid")
	[ -n "$cpid" ] || rs_fail "no cowstat row for the BGSAVE child"
	set -- $(cs_row "$ppid")
	pf=$(($1 - pb_f)) pc=$(($2 - pb_c)) pz=$(($3 - pb_z)) pr=$(($4 - pb_r)) pt=$(($5 - pb_t))
	set -- $(cs_row "$cpid")
	cf=$1 cc=$2 cz=$3 cr=$4 ct=$5
	tc_pid=- tc_n=- tc_ns=- tp_n=- tp_ns=-
	if [ -z "$ts_err" ]; then
		ts_listen_result
		set -- $(ts_tgid "$ppid")
		case $1$tp0_n in *-*) ;; *) tp_n=$(($1 - tp0_n)) tp_ns=$(($2 - tp0_ns)) ;; esac
	fi
	ahp1=$(smaps_kb "$ppid" AnonHugePages)
	split1=$(vmstat_get thp_split_pmd)
	digest_live=$(rs debug digest)
	case $kind in
	keys) live_new=$(rs_count_version "$RS_SOCK" "v$s:") ;;
	bigkey) live_new=$(rs getrange big:0 0 1) ;;
	*) live_new=0 ;;
	esac
	[ -z "$top_pid" ] || wait "$top_pid"
	rs_check_dump "dump-s$s.rdb" "$digest_fork" "$s"
	[ "$kind" = bigkey ] && {
		rs_start "$RS_CHECK_SOCK" "dump-s$s.rdb"
		ck_new=$(redis-cli -s "$RS_CHECK_SOCK" getrange big:0 0 1)
		rs_stop "$RS_CHECK_SOCK"
	}

	copy_pages=$((pc + cc + cz))
	ratio=$(awk -v r="$cow" -v c="$copy_pages" \
		'BEGIN { if (c) printf "%.2f", r / (c * 4096); else print "-" }')
	exact=yes
	[ "$ck_digest" = "$digest_fork" ] || exact=no
	if [ "$kind" = keys ]; then
		[ "$ck_new" = 0 ] && [ "$live_new" = "$w" ] || exact=no
	elif [ "$kind" = bigkey ]; then
		[ "$ck_new" = va ] && [ "$live_new" = "v$s" ] || exact=no
	fi
	[ "$kind" = none ] || [ "$digest_live" != "$digest_fork" ] || exact=no

	if [ -z "$json" ]; then
		echo "data set: $keys keys x $vsize B$([ "$kind" = bigkey ] && echo ", big:0 $(mib "$big")")"
		case $kind in
		keys) awk -v w="$w" -v a="$wu0" -v b="$wu1" -v d="$during" 'BEGIN {
			printf "writes: %d keys (%s%%) in %.1f s = %d keys/s, all during the save: %s\n",
				w, "'"$pct"'", b - a, w / (b - a), d }' ;;
		bigkey) echo "writes: SETRANGE at each of $w pages of big:0 during the save: $during" ;;
		esac
		echo "fork:  Redis latest_fork_usec $fork_us us; cowstat dup_mmap" \
			"$((bg_fork_ns / 1000)) us ($bg_forks fork)"
		echo "save:  $save_s s; Redis rdb_last_cow_size $(mib "$cow")" \
			"(peak seen $(mib "$ws_peak"))"
		echo "cowstat over the scenario (4 KiB events):"
		printf '%-7s %6s %9s %10s %8s %9s %13s\n' role pid wp_faults \
			cow_copies cow_zero wp_reuses thp_wp_faults
		printf '%-7s %6s %9s %10s %8s %9s %13s\n' parent "$ppid" "$pf" "$pc" "$pz" "$pr" "$pt"
		printf '%-7s %6s %9s %10s %8s %9s %13s\n' child "$cpid" "$cf" "$cc" "$cz" "$cr" "$ct"
		if [ -z "$ts_err" ]; then
			echo "kernel delay accounting (taskstats; every wp_page_copy, timed):"
			printf '%-7s %6s %12s %19s %12s\n' role pid wpcopy_count \
				"cowstat copies+zero" "us per copy"
			printf '%-7s %6s %12s %19s %12s\n' parent "$ppid" "$tp_n" \
				$((pc + pz)) "$(ts_mean_us "$tp_n" "$tp_ns")"
			printf '%-7s %6s %12s %19s %12s\n' child "$tc_pid" "$tc_n" \
				$((cc + cz)) "$(ts_mean_us "$tc_n" "$tc_ns")"
			[ -n "$ts_told" ] || {
				ts_told=1
				echo "taskstats counts each wp_page_copy() of a task: copies,"
				echo "zero-page breaks and GUP unshares (none here), so it equals"
				echo "cowstat's copies + zero; the parent's are deltas summed over"
				echo "its threads. Its delay is wall time inside that function"
				echo "(allocation, copy, page tables, preemption): the mean cost."
			}
		else
			echo "kernel delay accounting: not available (see the note at the top)"
		fi
		if [ -n "$top_pid" ]; then
			echo "live, from \`cow-demo top --comm redis-server 0.5\` during the save"
			echo "(S: + new, X ended; COMM: the name of the thread that faulted last):"
			cat "$RS_DIR/top.txt"
		fi
		echo "pages now private to the child = parent copies + child copies" \
			"+ child zero"
		echo "  = $pc + $cc + $cz = $copy_pages pages = $(mib $((copy_pages * 4096)))"
		echo "Redis / cowstat: $ratio"
		[ "$ahp0$ahp1" = 00 ] ||
			echo "THP: parent AnonHugePages $ahp0 kB before, $ahp1 kB after;" \
				"thp_split_pmd +$((split1 - split0))"
		echo "snapshot: digest dump $(echo "$ck_digest" | cut -c1-12)," \
			"at fork $(echo "$digest_fork" | cut -c1-12)," \
			"live $(echo "$digest_live" | cut -c1-12)"
		case $kind in
		keys) echo "          keys at version v$s: dump $ck_new, live $live_new of $w" ;;
		bigkey) echo "          big:0 starts with '$ck_new' in the dump, '$live_new' live" ;;
		esac
		echo "          exact fork-time snapshot: $exact"
		if [ "$kind" != none ]; then
			echo "the parent's largest anonymous VMA while the child saved (cow-demo map):"
			cat "$RS_DIR/map-s$s.out"
		fi
	else
		printf '{"scenario":%s,"kind":"%s","keys":%s,"value_size":%s,' "$s" "$kind" "$keys" "$vsize" >>"$json"
		printf '"writes":%s,"writes_during_save":%s,' "$w" "$([ $during = yes ] && echo true || echo false)" >>"$json"
		printf '"redis":{"latest_fork_usec":%s,"rdb_last_cow_size":%s,"current_cow_peak_max":%s},' "$fork_us" "$cow" "$ws_peak" >>"$json"
		printf '"cowstat":{"forks":%s,"fork_ns":%s,' "$bg_forks" "$bg_fork_ns" >>"$json"
		printf '"parent":{"pid":%s,"wp_faults":%s,"cow_copies":%s,"cow_zero":%s,"wp_reuses":%s,"thp_wp_faults":%s},' "$ppid" "$pf" "$pc" "$pz" "$pr" "$pt" >>"$json"
		printf '"child":{"pid":%s,"wp_faults":%s,"cow_copies":%s,"cow_zero":%s,"wp_reuses":%s,"thp_wp_faults":%s}},' "$cpid" "$cf" "$cc" "$cz" "$cr" "$ct" >>"$json"
		if [ -z "$ts_err" ]; then
			jn() { case $1 in -) echo null ;; *) echo "$1" ;; esac; }
			printf '"taskstats":{"parent":{"wpcopy_count":%s,"wpcopy_delay_total_ns":%s},' "$(jn "$tp_n")" "$(jn "$tp_ns")" >>"$json"
			printf '"child":{"pid":%s,"wpcopy_count":%s,"wpcopy_delay_total_ns":%s}},' "$(jn "$tc_pid")" "$(jn "$tc_n")" "$(jn "$tc_ns")" >>"$json"
		else
			printf '"taskstats":null,' >>"$json"
		fi
		printf '"child_private_pages":%s,"ratio_redis_to_cowstat":%s,' "$copy_pages" "$([ "$ratio" = - ] && echo null || echo "$ratio")" >>"$json"
		printf '"anon_huge_kb_before":%s,"anon_huge_kb_after":%s,"thp_split_pmd":%s,' "$ahp0" "$ahp1" "$((split1 - split0))" >>"$json"
		printf '"map":%s,' "$([ -s "$RS_DIR/map-s$s.out" ] && [ "$kind" != none ] && cat "$RS_DIR/map-s$s.out" || echo null)" >>"$json"
		printf '"save_s":%s,"snapshot_exact":%s}\n' "$save_s" "$([ $exact = yes ] && echo true || echo false)" >>"$json"
	fi
	[ "$exact" = yes ] || rs_fail "scenario $s: the dump does not match the fork-time data set"
}

explain() { say "$@"; }

# map_start S: cow-demo map of the parent (its largest anonymous VMA) from
# before the fork until the BGSAVE child exits: which pages the save left
# shared and which the parent copied. It only reads /proc (no fork), so
# the measured window still holds Redis's fork alone.
map_start() {
	map_fmt=""
	[ -z "$json" ] || map_fmt=--json
	cow-demo map --pid "$ppid" --wait 120 $map_fmt --svg "$RS_DIR/map-s$1.svg" \
		>"$RS_DIR/map-s$1.out" 2>"$RS_DIR/map-s$1.err" &
	map_pid=$!
	i=0
	until grep -q waiting "$RS_DIR/map-s$1.err" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 100 ] || rs_fail "cow-demo map --pid $ppid did not start: $(cat "$RS_DIR/map-s$1.err")"
		sleep 0.05
	done
}
map_result() {
	wait "$map_pid" || true
	grep -v waiting "$RS_DIR/map-s$s.err" >&2
}

rs_preflight
ts_preflight
: >"${json:-/dev/null}"
rs_start "$RS_SOCK" dump.rdb
read -r t0 _ </proc/uptime
rs_load "$keys" "$vsize"
read -r t1 _ </proc/uptime
rs config set rdb-key-save-delay "$delay" >/dev/null
say "redis $(redis-server --version | cut -d' ' -f3), $keys keys x $vsize B" \
	"loaded in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s" \
	"($(rs_info memory used_memory_human))"
[ -z "$ts_err" ] || say "note: no taskstats figures: $ts_err"

for s in $scenarios; do
	case $s in
	1) scenario 1 "BGSAVE, no writes during the save" none
		explain "No client writes, yet both processes copy a little: the parent"
		explain "(serverCron, client buffers, allocator metadata) and the child"
		explain "(its stack, stdio and rio buffers). Redis reads the child's"
		explain "smaps Private_Dirty, which counts exactly the pages that the"
		explain "copies left private to the child (plus pages the child" 
		explain "allocates fresh): hence a ratio near 1." ;;
	2) scenario 2 "BGSAVE while a client overwrites $pct% of keys" keys
		explain "Each overwrite of a small value dirties the page that holds"
		explain "it: the parent copies that page (cow_copies), the child keeps"
		explain "the original, now private. Several values share a 4 KiB page,"
		explain "so copies < writes. Redis samples the child's Private_Dirty"
		explain "(throttled, plus one final read); cowstat counts each copy as"
		explain "it happens, in both processes, at O(1) cost per read." ;;
	3) rs debug populate 1 big "$big" >/dev/null
		scenario 3 "a big key rewritten in place during the save" bigkey
		explain "Every 4 KiB page of big:0 is written once: one parent copy per"
		explain "page, whatever the value's size, or a reuse (no copy) where"
		explain "the child already gave the page back; the dump keeps the old"
		explain "bytes."
		explain "Redis can report much less: after writing a big value to the"
		explain "dump, the Redis 7 child gives its pages back (dismissObject,"
		explain "madvise DONTNEED), so they leave its Private_Dirty before the"
		explain "next smaps read, and the copies are never seen. cowstat counts"
		explain "them when they happen." ;;
	4) rs_stop "$RS_SOCK"
		echo always >/sys/kernel/mm/transparent_hugepage/enabled ||
			rs_fail "cannot switch THP to always"
		rs_start "$RS_SOCK" dump.rdb --disable-thp no
		rs_load "$keys" "$vsize"
		rs config set rdb-key-save-delay "$delay" >/dev/null
		scenario 4 "THP on (always; disable-thp no), $pct% of keys overwritten" keys
		[ "$ahp0" -gt 0 ] || rs_fail "THP run: the parent has no AnonHugePages before the fork (huge pages were not used)"
		echo madvise >/sys/kernel/mm/transparent_hugepage/enabled
		explain "With THP the fork copies PMDs instead of PTEs (faster fork);"
		explain "the first write into a shared huge page splits it"
		explain "(thp_wp_faults, thp_split_pmd) and copies ONE 4 KiB page, not"
		explain "2 MiB: copies stay close to the THP-off run. The cost is the"
		explain "split: the parent loses those huge pages (AnonHugePages drops)." ;;
	*) rs_fail "unknown scenario '$s' (1-4)" ;;
	esac
done
rs_stop "$RS_SOCK"
