#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# cow-demo top and watch --pid in the VM (KTAP). The workload is
# `cowstat-lifecycle hold 1021`: a child that copies 1021 heap pages (after
# its start-up) and then waits, so its row stands still while top shows it;
# /proc/cowstat/pid (`cowstat-lifecycle pidrow`) gives the exact totals top
# must show. top runs in a real terminal (tmux, 100x24: it must still fit
# 80 columns), into a file (plain text) and as JSON lines.
. "$(dirname "$0")/../lib/ktap.sh"
. "$(dirname "$0")/cowstat-lib.sh"

L=cowstat-lifecycle
K=1021

# counter TOKEN N: the Nth counter of a pidrow token
# S:wp_faults,cow_copies,cow_zero,wp_reuses,thp_wp_faults.
counter() { echo "${1#?:}" | cut -d, -f"$2"; }

# workload: start a holder; sets S (its pid) and its copies, faults, reuses.
workload() {
	S=$($L hold $K)
	row=$($L pidrow "$S")
	copies=$(counter "$row" 2) faults=$(counter "$row" 1) reuses=$(counter "$row" 4)
}

# wait_screen SESSION REGEX: capture the screen until a line matches, 30
# tries (each takes 0.1 s and a tmux client: 5 to 20 s under TCG); the last
# capture is in SCREEN.
wait_screen() {
	_i=0
	while [ $_i -lt 30 ]; do
		SCREEN=$(tui_capture "$1")
		echo "$SCREEN" | grep -Eq "$2" && return 0
		sleep 0.1
		_i=$((_i + 1))
	done
	return 1
}

# starts REGEX TEXT: 0 if TEXT matches the extended regex.
matches() { echo "$2" | grep -Eq "$1"; }

ktap_header
ktap_plan 19

# --- 1. The full screen, in a terminal wider than 80 columns. A 2 s
# interval: an ended row shows for one refresh, and a capture under TCG
# takes a few tenths of a second. Sorted by total copies, so the ended
# workload (0 copies/s, but 1021+ copies) stays near the top: sorted by
# rate, the loop's own short-lived processes (tmux clients, grep) pushed
# it off a 60-line screen in one run.
tui_start top "sh -c 'trap : INT; cow-demo top --sort copies-total 2 2>/tmp/top.err; echo top exited \$?; stty -a; sleep 60'" 100 60
sleep 1
workload
ktap_info "workload pid $S, its /proc/cowstat/pid row $row"
[ "$copies" -ge $K ]
ktap_result $? workload_copied_at_least_k "copies $copies >= $K"
wait_screen top "^ +$S cowstat-lifecyc "
echo "$SCREEN" | sed -n '1,14s/^/# | /p'
matches '^cow-demo top  [0-9:]{8}  every 2 s  sort copies-total  [0-9]+ shown, ' "$(echo "$SCREEN" | sed -n 1p)"
ktap_result $? top_screen_title
matches '^all/s: copies [0-9.]+  faults [0-9.]+  reuses [0-9.]+  zero [0-9.]+  forks [0-9.]+' \
	"$(echo "$SCREEN" | sed -n 2p)"
ktap_result $? top_screen_global_rates
ktap_expect_eq top_screen_column_header \
	"    PID COMM             COPY/s FAULT/s REUSE/s ZERO/s  COPIES  FAULTS  REUSES S" \
	"$(echo "$SCREEN" | sed -n 4p)"
ktap_expect_eq top_screen_workload_totals "$copies $faults $reuses" \
	"$(echo "$SCREEN" | grep -E "^ +$S " | awk '{ print $7, $8, $9 }')"
widest=$(echo "$SCREEN" | awk '{ if (length($0) > m) m = length($0) } END { print m + 0 }')
[ "$widest" -le 80 ]
ktap_result $? top_screen_fits_80_columns "widest line $widest of a 100x60 terminal"
kill "$S"
wait_screen top "^ +$S cowstat-lifecyc .* X$"
ktap_result $? top_screen_marks_exit "$(echo "$SCREEN" | grep -E "^ +$S ")"
TERM=screen LC_ALL=C.UTF-8 tmux send-keys -t top q
wait_screen top "^top exited "
[ -s /tmp/top.err ] && ktap_info "stderr: $(cat /tmp/top.err)"
ktap_expect_eq top_q_quits_status_0 "top exited 0" "$(echo "$SCREEN" | grep '^top exited')"
# stty -a lists icanon and echo when top gave the terminal back (-icanon
# and -echo if it left it raw).
ktap_expect_eq top_terminal_restored "icanon echo " \
	"$(echo "$SCREEN" | tr ' ' '\n' | grep -xE -- '-?(icanon|echo)' | tr '\n' ' ')"
tui_stop top

tui_start topc "sh -c 'trap : INT; cow-demo top 0.5 --sort pid 2>/tmp/topc.err; echo top exited \$?; sleep 60'" 80 24
wait_screen topc '^ +PID COMM '
TERM=screen LC_ALL=C.UTF-8 tmux send-keys -t topc C-c
wait_screen topc "^top exited "
[ -s /tmp/topc.err ] && ktap_info "stderr: $(cat /tmp/topc.err)"
ktap_expect_eq top_ctrl_c_quits_status_0 "top exited 0" "$(echo "$SCREEN" | grep '^top exited')"
tui_stop topc

# --- 2. JSON lines while the workload starts and ends: new, live..., exited.
# 20 samples (10 s): the workload must start and be killed inside them. With
# 8 (4 s) a CI run with the host loaded 3x (debug lanes beside it) saw the
# workload take so long that its exit fell after the last sample.
cow-demo top --json --comm cowstat-lifecyc 0.5 20 >/tmp/top.json 2>/tmp/top.json.err &
T=$!
sleep 1
workload
sleep 1.2
kill "$S"
wait $T
ktap_expect_eq top_json_20_lines "0 20" "$? $(wc -l </tmp/top.json)"
entries=$(grep -o "\"pid\":$S,\"comm\":\"[^\"]*\",\"state\":\"[a-z]*\",\"delta\":{[^}]*},\"per_s\":{[^}]*},\"total\":{[^}]*}" /tmp/top.json)
states=$(echo "$entries" | sed 's/.*"state":"\([a-z]*\)".*/\1/' | tr '\n' ' ')
matches '^new (live )*exited $' "$states"
ktap_result $? top_json_states_new_live_exited "$states"
sum=$(echo "$entries" | sed 's/.*"delta":{[^}]*"cow_copies":\([0-9]*\).*/\1/' | awk '{ s += $1 } END { print s + 0 }')
final=$(echo "$entries" | tail -1 | sed 's/.*"total":{[^}]*"cow_copies":\([0-9]*\).*/\1/')
ktap_expect_eq top_json_deltas_add_up_to_final_row "$copies $copies" "$sum $final"

# --- 3. Plain text when stdout is a file: a block per refresh.
workload
cow-demo top --pid "$S" 0.3 2 >/tmp/top.txt 2>/dev/null
ktap_expect_eq top_plain_two_blocks "0 8" "$? $(wc -l </tmp/top.txt)"
sed 's/^/# | /' /tmp/top.txt
ktap_expect_eq top_plain_workload_row "cowstat-lifecyc 0 $copies $faults $reuses" \
	"$(grep -E "^ +$S " /tmp/top.txt | tail -1 | awk '{ print $2, $3, $7, $8, $9 }')"

# --- 4. watch --pid: deltas of the same process until it ends.
cow-demo watch --pid "$S" 0.3 >/tmp/watch.txt 2>/tmp/watch.err &
W=$!
sleep 1
kill "$S"
wait $W
ktap_expect_eq watch_pid_until_exit "0 $copies X" "$? $(tail -1 /tmp/watch.txt | awk '{ print $7, $8 }')"
grep -q "^pid $S (cowstat-lifecyc) ended: $copies copies, $faults faults, " /tmp/watch.err
ktap_result $? watch_pid_ended_note "$(tail -1 /tmp/watch.err)"

# --- 5. A pid that does not exist: one line naming the flag.
out=$(cow-demo watch --pid 4000000 2>&1)
matches "^2 cow-demo: error: invalid value '4000000' for '--pid': no process" "$? $out"
ktap_result $? watch_pid_no_such_process "$out"
out=$(cow-demo top --pid 4000000 2>&1)
matches "^2 cow-demo: error: invalid value '4000000' for '--pid': no such process" "$? $out"
ktap_result $? top_pid_no_such_process "$out"
ktap_finished
