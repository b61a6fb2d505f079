#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Guest driver of `make bench` (scripts/bench): every benchmark in one boot.
#
# usage: sh /lib/cowstat/bench.sh [full|quick|smoke|rows|rows-quick] [OUT]
#
# Runs cowstat-bench with the module loaded and unloaded (rmmod/insmod in
# alternating order, ROUNDS times), writing JSON lines to OUT (default
# /dev/ttyS1, which vm-run --out connects to a host file) and progress to
# the console. `quick` uses small sizes (seconds under TCG); `smoke` tiny
# ones, for tests/guest/bench-smoke.sh. `rows` runs only the one-process
# part (self and pid vs smaps as live rows, heap and VMAs grow) and the
# scale part (`rows-quick`: small sizes).
set -e
mode=${1:-full}
out=${2:-/dev/ttyS1}
KO=${COWSTAT_KO:-/lib/cowstat/cowstat.ko}
B=cowstat-bench
exec 3>"$out"

log() { echo "bench: $*"; }
note() { echo "# $*" >&3; }
# Variants that scripts/bench adds: the "bare" cowstat build (its entry
# probes return at once), loaded as `bare`, and with --baseline REF the
# module built from commit REF, loaded as `base`. `load` always means the
# module under test.
BARE_KO=/lib/cowstat/cowstat-bare.ko
BASE_KO=/lib/cowstat/cowstat-base.ko
loaded() { [ -e /proc/cowstat/stats ]; }
unload() {
	! loaded || rmmod cowstat
	state=none
}
load() { [ "${state:-}" = full ] && loaded || { unload; insmod "$KO"; state=full; }; }
bare() { unload; insmod "$BARE_KO"; state=bare; }
base() { unload; insmod "$BASE_KO"; state=base; }
reset() { echo 0 >/proc/cowstat/stats; }
run() { log "$*"; "$B" "$@" >&3; }

case $mode in
full)
	ROUNDS=20 OV_HEAP=256M OV_PAGES=32768 OV_TOUCH=64M OV_REP=3
	FORK_HEAPS="16M 64M 256M 1G 2G" FORK_REP=5
	KNOW_HEAPS="16M 64M 256M 1G 2G" KNOW_VMAS="1 10 100 1000 10000" KNOW_REP=5
	KNOW_VMA_HEAP=160M SCALE_N="1 2 16 256 1000" SCALE_PAGES=16384 SCALE_ROUNDS=2 SCALE_REP=2
	FILL=7000 FILL_KNOW=1000 TABLE_PAIRS=3
	ONE_HEAP=1G ONE_ROWS="1 16 256 1000" ONE_HEAPS="16M 64M 256M 1G" ONE_VMAS="1 10 100 1000 10000"
	ONE_VMA_HEAP=160M ONE_REP=20
	;;
rows)
	ONE_HEAP=1G ONE_ROWS="1 16 256 1000" ONE_HEAPS="16M 64M 256M 1G" ONE_VMAS="1 10 100 1000 10000"
	ONE_VMA_HEAP=160M ONE_REP=20
	SCALE_N="1 2 16 256 1000" SCALE_PAGES=16384 SCALE_ROUNDS=4 SCALE_REP=2
	;;
rows-quick)
	ONE_HEAP=64M ONE_ROWS="1 16 256" ONE_HEAPS="16M 64M" ONE_VMAS="1 100" ONE_VMA_HEAP=16M ONE_REP=5
	SCALE_N="1 16" SCALE_PAGES=1024 SCALE_ROUNDS=1 SCALE_REP=2
	;;
quick)
	ROUNDS=2 OV_HEAP=32M OV_PAGES=2048 OV_TOUCH=8M OV_REP=2
	FORK_HEAPS="16M 64M" FORK_REP=2
	KNOW_HEAPS="16M 64M" KNOW_VMAS="1 100" KNOW_REP=2
	KNOW_VMA_HEAP=16M SCALE_N="1 16" SCALE_PAGES=1024 SCALE_ROUNDS=1 SCALE_REP=2
	FILL=5000 FILL_KNOW=1000 TABLE_PAIRS=1
	ONE_HEAP=64M ONE_ROWS="1 16 256" ONE_HEAPS="16M 64M" ONE_VMAS="1 100" ONE_VMA_HEAP=16M ONE_REP=5
	;;
smoke)
	ROUNDS=1 OV_HEAP=4M OV_PAGES=23 OV_TOUCH=1M OV_REP=1
	FORK_HEAPS="4M" FORK_REP=2
	KNOW_HEAPS="4M" KNOW_VMAS="3" KNOW_REP=1
	KNOW_VMA_HEAP=1M SCALE_N="3" SCALE_PAGES=30 SCALE_ROUNDS=1 SCALE_REP=1
	FILL=5 FILL_KNOW=5 TABLE_PAIRS=0
	ONE_HEAP=4M ONE_ROWS="1 4" ONE_HEAPS="" ONE_VMAS="" ONE_VMA_HEAP=1M ONE_REP=1
	;;
*) echo "bench.sh: error: unknown mode '$mode' (full, quick, smoke, rows or rows-quick)" >&2; exit 2 ;;
esac

command -v $B >/dev/null || { echo "bench.sh: error: $B not in PATH" >&2; exit 2; }
cs=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)
case $cs in *jiffies*)
	if [ "$mode" != smoke ]; then
		echo "bench.sh: error: clocksource is $cs (ms resolution): boot with tsc_early_khz=HOST_TSC_KHZ tsc=reliable" >&2
		exit 2
	fi ;;
esac
load
note "clocksource $cs"
note "mode $mode; kernel $(uname -r); $(nproc) CPUs; MemTotal $(awk '/MemTotal/ {print $2}' /proc/meminfo) kB"
note "thp: $(cat /sys/kernel/mm/transparent_hugepage/enabled)"
if [ -r /sys/kernel/debug/kprobes/list ]; then
	while read -r line; do note "kprobes/list: $line"; done </sys/kernel/debug/kprobes/list
fi
while read -r line; do note "probes: $line"; done </proc/cowstat/probes
start=$(date +%s)

# One process's figures (cowstat-bench one): /proc/cowstat/self and pid
# against the process's own smaps, first as live rows grow (held processes,
# each with a row), then as heap and VMAs grow with the most rows. A reset
# before each run empties the exited ring, so procs lists the live rows.
one_part() {
	load
	keepers="" held=0
	for n in $ONE_ROWS; do
		add=$((n - 1 - held))
		if [ $add -gt 0 ]; then
			log "hold --procs $add"
			keepers="$keepers $($B hold --procs $add)"
			held=$((held + add))
		fi
		reset
		run --tag rows one --heap $ONE_HEAP --repeats $ONE_REP
	done
	for h in $ONE_HEAPS; do
		reset
		run --tag heap one --heap $h --repeats $ONE_REP
	done
	for v in $ONE_VMAS; do
		reset
		run --tag vmas one --heap $ONE_VMA_HEAP --vmas $v --repeats $ONE_REP
	done
	# shellcheck disable=SC2086
	[ -z "$keepers" ] || kill $keepers
	reset
}

# Scale: N processes taking COW faults at once, loaded and unloaded
# (ABBA: odd rounds loaded first, even rounds unloaded first).
scale_part() {
	r=1
	while [ $r -le $SCALE_ROUNDS ]; do
		order="load unload"
		[ $((r % 2)) = 0 ] && order="unload load"
		for s in $order; do
			$s
			for n in $SCALE_N; do
				loaded && reset
				run --tag scale$r scale --procs $n --total-pages $SCALE_PAGES --repeats $SCALE_REP
			done
		done
		r=$((r + 1))
	done
	load
}

finish() {
	note "clocksource at the end $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
	dmesg | grep -i 'clocksource.*unstable' | while read -r line; do note "dmesg: $line"; done
	note "done in $(($(date +%s) - start)) s"
	log "done in $(($(date +%s) - start)) s"
}

case $mode in rows*)
	one_part
	scale_part
	finish
	exit 0
	;;
esac

# 1+2. Probe overhead and COW cost breakdown, loaded vs unloaded (and the
# variants, if present), in ABBA / ABCDDCBA order. Variant runs are tagged
# bareN / baseN so that roundN holds exactly the loaded/unloaded pair.
states="load unload"
[ -e "$BARE_KO" ] && states="$states bare"
[ -e "$BASE_KO" ] && states="$states base"
note "overhead states: $states"
r=1
while [ $r -le $ROUNDS ]; do
	order=$states
	[ $((r % 2)) = 0 ] && order=$(echo "$states" | awk '{for (i = NF; i > 0; i--) printf "%s ", $i}')
	for s in $order; do
		$s
		case $s in bare | base) tag=$s$r ;; *) tag=round$r ;; esac
		run --tag $tag overhead --heap $OV_HEAP --pages $OV_PAGES \
			--touch $OV_TOUCH --repeats $OV_REP
	done
	r=$((r + 1))
done

# 3. fork() latency vs heap size, THP off and on (module loaded: dup_mmap time).
load
for h in $FORK_HEAPS; do
	for thp in off on; do
		run --tag sweep fork --heap $h --thp $thp --repeats $FORK_REP
	done
done

# 4. The cost of knowing, as the heap grows and as the VMA count grows.
reset
for h in $KNOW_HEAPS; do
	run --tag heap know --heap $h --vmas 1 --repeats $KNOW_REP
done
for v in $KNOW_VMAS; do
	run --tag vmas know --heap $KNOW_VMA_HEAP --vmas $v --repeats $KNOW_REP
done

# Many rows. Rows outlive their processes, so every child of fill leaves
# one: first ~1000 rows (a quarter of the 4096 slots), then FILL more
# children, past 4096, so the table is full and new processes spill into
# <other> after MAX_PROBES slots. fill also times whole-file procs reads.
reset
run --tag rows_1000 fill --procs $FILL_KNOW --reads $KNOW_REP
run --tag rows_1000 know --heap 64M --vmas 1 --repeats $KNOW_REP
run --tag table_full fill --procs $FILL --reads $KNOW_REP
run --tag table_full1 overhead --heap $OV_HEAP --pages $OV_PAGES --touch $OV_TOUCH --repeats $OV_REP
# Pairs: the same run with an empty table, then a refilled table again.
i=1
while [ $i -le $TABLE_PAIRS ]; do
	reset
	run --tag table_empty$i overhead --heap $OV_HEAP --pages $OV_PAGES --touch $OV_TOUCH --repeats $OV_REP
	if [ $i -lt $TABLE_PAIRS ]; then
		run --tag table_full fill --procs $((FILL + FILL_KNOW)) --reads $KNOW_REP
		run --tag table_full$((i + 1)) overhead --heap $OV_HEAP --pages $OV_PAGES \
			--touch $OV_TOUCH --repeats $OV_REP
	fi
	i=$((i + 1))
done
reset

# 5. Scale, then 6. one process's figures.
scale_part
one_part
finish
