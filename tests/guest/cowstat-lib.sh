# SPDX-License-Identifier: GPL-2.0
# Helpers for in-VM tests that read /proc/cowstat (sourced; busybox ash).

# stat_value NAME: a counter from /proc/cowstat/stats, without forking
# (builtins only), so reading it does not itself count a fork.
stat_value() {
	while read -r name value; do
		if [ "$name" = "$1" ]; then
			echo "$value"
			return 0
		fi
	done </proc/cowstat/stats
	echo missing
}
