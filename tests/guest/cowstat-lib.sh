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
kernel_log_problems() {
	dmesg | grep -E 'WARNING:|BUG:|Oops|Kernel panic|Call Trace|general protection|sleeping function called' | head -5
}
