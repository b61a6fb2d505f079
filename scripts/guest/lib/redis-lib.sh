# SPDX-License-Identifier: GPL-2.0
# Guest helpers for the Redis BGSAVE scenarios (sourced by redis-demo.sh and
# redis-test.sh; busybox ash). See docs/redis.md.
#
# Data set: DEBUG POPULATE N key SIZE makes key:0..key:N-1 whose value is
# "value:I" padded with NUL bytes to SIZE: that is version 0. A writer in
# scenario S overwrites key:I with "vS:I:" padded with '.' to SIZE, so every
# value says which version it is.

RS_DIR=/tmp/redis
RS_SOCK=$RS_DIR/live.sock
RS_CHECK_SOCK=$RS_DIR/check.sock

rs_fail() {
	echo "redis-demo: error: $*" >&2
	exit 1
}

rs() { redis-cli -s "$RS_SOCK" "$@"; }

# rs_info SECTION FIELD [SOCK]: one INFO field, no CR.
rs_info() {
	redis-cli -s "${3:-$RS_SOCK}" info "$1" | tr -d '\r' | sed -n "s/^$2://p"
}

# rs_preflight: the guest can run Redis at all.
rs_preflight() {
	command -v redis-server >/dev/null || rs_fail "redis-server is not in the guest (boot with vm-run --add-program /usr/bin/redis-server)"
	command -v redis-cli >/dev/null || rs_fail "redis-cli is not in the guest (vm-run --add-program /usr/bin/redis-cli)"
	[ -r /proc/cowstat/procs ] || rs_fail "/proc/cowstat/procs missing: cowstat module not loaded"
	mkdir -p "$RS_DIR"
	# /proc/net/unix exists exactly when the kernel has AF_UNIX.
	[ -e /proc/net/unix ] || rs_fail "the guest kernel has no UNIX domain sockets (CONFIG_UNIX=y needed)"
}

# rs_start SOCK DBFILE [extra redis-server args...]: start a server and
# wait until it answers PING.
rs_start() {
	sock=$1 db=$2
	shift 2
	rm -f "$sock"
	redis-server --port 0 --unixsocket "$sock" --daemonize yes \
		--save "" --appendonly no --dir "$RS_DIR" --dbfilename "$db" \
		--logfile "$RS_DIR/${db%.rdb}.log" --enable-debug-command yes \
		"$@" || rs_fail "redis-server did not start (see $RS_DIR/${db%.rdb}.log)"
	i=0
	until [ "$(redis-cli -s "$sock" ping 2>/dev/null)" = PONG ]; do
		i=$((i + 1))
		[ $i -lt 100 ] || rs_fail "redis-server on $sock did not answer PING within 10 s: $(tail -1 "$RS_DIR/${db%.rdb}.log")"
		sleep 0.1
	done
}

rs_stop() { redis-cli -s "$1" shutdown nosave >/dev/null 2>&1; }

# rs_load KEYS SIZE: version-0 data set.
rs_load() {
	out=$(rs debug populate "$1" key "$2")
	[ "$out" = OK ] || rs_fail "DEBUG POPULATE failed: $out"
	[ "$(rs dbsize)" = "$1" ] || rs_fail "data set has $(rs dbsize) keys, expected $1"
}

# rs_gen_writes FILEPREFIX VERSION KEYS FRACTION_PCT RATE SIZE: RESP files
# that overwrite every (100/FRACTION)-th key with version VERSION, one file
# per 100 ms at RATE keys/s. Prints the number of keys written.
rs_gen_writes() {
	rm -f "$1".*
	awk -v pre="$1" -v ver="$2" -v n="$3" -v pct="$4" -v rate="$5" \
		-v size="$6" 'BEGIN {
		w = int(n * pct / 100); if (w < 1) w = 1
		per = int(rate / 10); if (per < 1) per = 1
		for (j = 0; j < w; j++) {
			i = int(j * n / w); k = "key:" i
			v = "v" ver ":" i ":"
			while (length(v) < size) v = v "................"
			v = substr(v, 1, size)
			f = sprintf("%s.%05d", pre, int(j / per))
			printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n",
				length(k), k, length(v), v > f
		}
		print w }'
}

# rs_run_writes FILEPREFIX: send the files 100 ms apart on one connection.
rs_run_writes() {
	for f in "$1".[0-9]*; do
		cat "$f"
		sleep 0.1
	done | redis-cli -s "$RS_SOCK" --pipe >"$1.out" 2>&1
}

# rs_gen_bigkey_writes FILE VERSION SIZE: SETRANGE big:0 at every 4 KiB
# offset (an in-place rewrite that touches every page of the value).
rs_gen_bigkey_writes() {
	awk -v ver="$2" -v size="$3" 'BEGIN {
		m = "v" ver
		for (o = 0; o < size; o += 4096)
			printf "*4\r\n$8\r\nSETRANGE\r\n$5\r\nbig:0\r\n$%d\r\n%d\r\n$%d\r\n%s\r\n",
				length(o ""), o, length(m), m
	}' >"$1"
}

# cs_read PREFIX: /proc/cowstat/stats into PREFIX_name variables with shell
# builtins only, so reading does not fork (forks are what we measure).
cs_read() {
	while read -r n v; do eval "$1_$n=\$v"; done </proc/cowstat/stats
}

# cs_row PID: "wp_faults cow_copies cow_zero wp_reuses thp_wp_faults", zeros
# if the process has no row.
cs_row() {
	awk -v p="$1" '$1 == p { print $3, $4, $5, $6, $7; f = 1 }
		END { if (!f) print "0 0 0 0 0" }' /proc/cowstat/procs
}

# cs_child_pid PARENT: the other redis-server row (Redis 7.0 renames the
# child's argv to redis-rdb-bgsave, not its comm).
cs_child_pid() {
	awk -v p="$1" '$2 == "redis-server" && $1 != p { print $1 }' /proc/cowstat/procs | tail -1
}

# rs_bgsave_measured: BGSAVE with the cowstat stats read just before and
# after using builtins, so the window holds exactly Redis's fork. The
# redis-cli that sends BGSAVE is started (forked) before the window and
# waits on a FIFO. Sets bg_forks, bg_fork_ns, bg_reply.
rs_bgsave_measured() {
	rm -f "$RS_DIR/go" "$RS_DIR/bgsave.out"
	mkfifo "$RS_DIR/go"
	{ read -r _ <"$RS_DIR/go"; echo BGSAVE; } |
		redis-cli -s "$RS_SOCK" >"$RS_DIR/bgsave.out" 2>&1 &
	bg_cli=$!
	sleep 0.3
	cs_read b0
	echo go >"$RS_DIR/go"
	wait "$bg_cli"
	cs_read b1
	bg_forks=$((b1_forks - b0_forks))
	bg_fork_ns=$((b1_fork_ns - b0_fork_ns))
	read -r bg_reply <"$RS_DIR/bgsave.out"
}

# rs_wait_save: poll INFO every 100 ms until the save ends; keeps the
# highest current_cow_peak seen (Redis zeroes it when the child exits).
rs_wait_save() {
	ws_peak=0
	i=0
	while :; do
		info=$(rs info persistence | tr -d '\r')
		p=$(echo "$info" | sed -n 's/^current_cow_peak://p')
		[ "${p:-0}" -gt "$ws_peak" ] && ws_peak=$p
		echo "$info" | grep -q '^rdb_bgsave_in_progress:1' || break
		i=$((i + 1))
		[ $i -lt 3000 ] || rs_fail "BGSAVE still running after 300 s"
		sleep 0.1
	done
	st=$(echo "$info" | sed -n 's/^rdb_last_bgsave_status://p')
	[ "$st" = ok ] || rs_fail "BGSAVE failed (rdb_last_bgsave_status:$st): $(grep -i 'background\|save' "$RS_DIR/live.log" | tail -1)"
}

# rs_count_version SOCK PREFIX: keys whose value starts with PREFIX.
rs_count_version() {
	redis-cli -s "$1" eval "local n=0
for _, k in ipairs(redis.call('KEYS', 'key:*')) do
  if string.sub(redis.call('GET', k), 1, #ARGV[1]) == ARGV[1] then n = n + 1 end
end
return n" 0 "$2"
}

# rs_check_dump DBFILE FORK_DIGEST VERSION: load the dump into a second
# server; sets ck_digest ck_keys ck_new (keys at VERSION in the dump).
rs_check_dump() {
	rs_start "$RS_CHECK_SOCK" "$1"
	ck_digest=$(redis-cli -s "$RS_CHECK_SOCK" debug digest)
	ck_keys=$(redis-cli -s "$RS_CHECK_SOCK" dbsize)
	ck_new=$(rs_count_version "$RS_CHECK_SOCK" "v$3:")
	rs_stop "$RS_CHECK_SOCK"
}

# smaps_kb PID FIELD: sum of FIELD over the process's smaps, in kB.
smaps_kb() {
	awk -v f="$2:" '$1 == f { s += $2 } END { print s + 0 }' "/proc/$1/smaps"
}

vmstat_get() { awk -v f="$1" '$1 == f { print $2 }' /proc/vmstat; }

# Third witness: the kernel's delay accounting (cowstat-taskstats, taskstats
# netlink; needs the `delayacct` boot option). ts_preflight sets ts_err to
# the tool's one-line error if it cannot be read (the demo then says so and
# goes on without it).
ts_preflight() {
	ts_err=$(cowstat-taskstats --pid 1 2>&1 >/dev/null) && ts_err=""
}

# ts_tgid PID: "wpcopy_count wpcopy_delay_total_ns" of a live process (sum
# over its threads), "- -" if unavailable.
ts_tgid() {
	cowstat-taskstats --tgid "$1" 2>/dev/null |
		awk '{ print $4, $6; f = 1 } END { if (!f) print "- -" }'
}

# ts_listen_start PPID: a listener that prints the final figures of the
# next child of PPID to exit (the BGSAVE child); returns once it is
# registered, so the child cannot exit unseen. Sets ts_pid.
ts_listen_start() {
	rm -f "$RS_DIR/ts.out" "$RS_DIR/ts.err"
	cowstat-taskstats --listen --ppid "$1" --count 1 --timeout 900 \
		>"$RS_DIR/ts.out" 2>"$RS_DIR/ts.err" &
	ts_pid=$!
	i=0
	until grep -q listening "$RS_DIR/ts.err" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 100 ] || rs_fail "cowstat-taskstats --listen did not start: $(cat "$RS_DIR/ts.err")"
		sleep 0.05
	done
}

# ts_listen_result: waits for the listener; sets tc_pid tc_n tc_ns (pid,
# wpcopy_count, wpcopy_delay_total_ns of the exited child, "-" if it saw
# none). Not in $(...): only this shell can wait for the listener.
ts_listen_result() {
	wait "$ts_pid"
	set -- $(awk '$1 == "pid" { print $2, $4, $6; f = 1 }
		END { if (!f) print "- - -" }' "$RS_DIR/ts.out")
	tc_pid=$1 tc_n=$2 tc_ns=$3
}

# ts_mean_us COUNT NS: mean time per wp_page_copy in microseconds.
ts_mean_us() {
	awk -v n="$1" -v t="$2" 'BEGIN {
		if (n + 0 > 0) printf "%.1f", t / n / 1000; else print "-" }'
}
