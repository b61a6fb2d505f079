# SPDX-License-Identifier: GPL-2.0
# Helpers for in-VM tests that read /proc/cowstat (sourced; busybox ash).

# stat_read NAME: set $STAT to a counter from /proc/cowstat/stats using
# shell builtins only. Unlike $(...), this runs no subshell, so reading a
# counter does not itself fork and change `forks`.
stat_read() {
	STAT=missing
	while read -r name value; do
		if [ "$name" = "$1" ]; then
			STAT=$value
			return 0
		fi
	done </proc/cowstat/stats
}

# as_nobody COMMAND: run a shell command as an unprivileged user.
as_nobody() {
	grep -q '^nobody:' /etc/passwd 2>/dev/null ||
		echo 'nobody:x:65534:65534:nobody:/:/bin/sh' >>/etc/passwd
	grep -q '^nogroup:' /etc/group 2>/dev/null ||
		echo 'nogroup:x:65534:' >>/etc/group
	su -s /bin/sh nobody -c "$1"
}

# kernel_log_problems: kernel log lines that mean something went wrong.
# (Not "Call Trace": the OOM killer prints one on purpose.)
kernel_log_problems() {
	dmesg | grep -E 'WARNING:|BUG:|Oops|Kernel panic|general protection|sleeping function called' | head -5
}

# Background load for unload races: forkers that write (COW faults, forks)
# and readers of every /proc/cowstat file. start_load, then stop_load.
_forker() {
	while [ ! -e /tmp/stop-load ]; do
		cow-demo fork --heap 2M --pages 23 --json >/dev/null 2>&1
	done
}
_reader() {
	while [ ! -e /tmp/stop-load ]; do
		cat /proc/cowstat/stats /proc/cowstat/procs /proc/cowstat/probes \
			/proc/cowstat/fork_latency >/dev/null 2>&1
	done
}
# start_load [FORKERS [READERS]] (default 3 and 2)
start_load() {
	rm -f /tmp/stop-load
	for _i in $(seq "${1:-3}"); do _forker & done
	for _i in $(seq "${2:-2}"); do _reader & done
}
stop_load() {
	touch /tmp/stop-load
	wait
}

# reload_cycles N KO: rmmod + insmod N times; sets RELOAD_FAILS to the
# number of commands that failed.
reload_cycles() {
	RELOAD_FAILS=0
	_n=0
	while [ $_n -lt "$1" ]; do
		rmmod cowstat 2>/dev/null || RELOAD_FAILS=$((RELOAD_FAILS + 1))
		insmod "$2" 2>/dev/null || RELOAD_FAILS=$((RELOAD_FAILS + 1))
		_n=$((_n + 1))
		# Progress, so a slow phase is told from a stuck one.
		[ $((_n % 50)) -ne 0 ] || echo "# reloads: $_n of $1 (uptime $(cut -d' ' -f1 /proc/uptime) s)"
	done
}

# A real terminal for cow-demo top/map: tmux, 80x24 unless told otherwise.
# scripts/run-tests puts tmux, its terminfo and the C.UTF-8 locale in the
# guest. tui_start NAME COMMAND [COLS ROWS]; tui_capture NAME prints the
# screen as text; tui_stop NAME ends the session.
tui_start() {
	TERM=screen LC_ALL=C.UTF-8 tmux new-session -d -s "$1" -x "${3:-80}" -y "${4:-24}" "$2"
}
tui_capture() { TERM=screen LC_ALL=C.UTF-8 tmux capture-pane -p -t "$1"; }
tui_stop() { TERM=screen LC_ALL=C.UTF-8 tmux kill-session -t "$1" 2>/dev/null || true; }
have_tmux() { command -v tmux >/dev/null 2>&1; }

# expect_checks NAME...: one KTAP result per NAME from the "check NAME
# EXPECTED OBSERVED" lines of a cowstat-lifecycle run, whose output is in
# $OUT and exit status in $ST; its diagnostics ("# ...") are printed first.
expect_checks() {
	echo "$OUT" | grep '^#'
	for name in "$@"; do
		line=$(echo "$OUT" | grep "^check $name " | head -1)
		if [ -z "$line" ]; then
			ktap_result 1 "$name" "cowstat-lifecycle reported no '$name' (exit status $ST)" \
				"$(echo "$OUT" | tail -3)"
			continue
		fi
		# shellcheck disable=SC2086
		set -- $line
		ktap_expect_eq "$2" "$3" "$4"
	done
}
