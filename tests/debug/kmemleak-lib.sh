# SPDX-License-Identifier: GPL-2.0
# kmemleak_check NAME: one KTAP result, ok when kmemleak scanned and found
# no unreferenced object at all. Not "none with cowstat in its backtrace":
# kmemleak names a frame only while its module is loaded, so a leak from a
# cowstat that was since unloaded shows bare addresses, and such a filter
# counted 0 of the 7 objects `scripts/test-debug --plant-leak` plants.
# kmemleak switches itself off for good when it cannot allocate its own
# bookkeeping (a global OOM does it); a scan is then impossible, and that is
# a failure, not a pass of a scan that never ran.
KML=/sys/kernel/debug/kmemleak
kmemleak_check() {
	# Two scans: kmemleak reports an object only once it looked
	# unreferenced in two consecutive scans. A switched-off kmemleak
	# refuses the write; its dmesg line says why.
	if ! { echo scan >$KML && sleep 2 && echo scan >$KML; } 2>/dev/null; then
		ktap_result 1 "$1" "writing 'scan' to $KML failed: kmemleak is off, nothing was scanned" \
			"$(dmesg | grep 'kmemleak:' | tail -1)"
		return
	fi
	leaks=$(grep -c 'unreferenced object' $KML)
	# The first report, when there is one: its backtrace says whose it is.
	awk '/unreferenced object/ { n++ } n == 1 { print "# " $0 }' $KML | head -20
	[ "$leaks" = 0 ]
	ktap_result $? "$1" "kmemleak: $leaks unreferenced objects"
}
