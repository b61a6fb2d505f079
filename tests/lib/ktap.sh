# SPDX-License-Identifier: GPL-2.0
# Minimal KTAP helpers for the in-VM tests (sourced by bash on the host and busybox ash in the VM).
# Modelled on the kernel's tools/testing/selftests/kselftest/ktap_helpers.sh.

KTAP_N=0
KTAP_FAIL=0

ktap_header() { echo "TAP version 13"; }
ktap_plan() { echo "1..$1"; }
ktap_info() { echo "# $*"; }

# ktap_result 0|1 NAME [DIAGNOSTIC...]
ktap_result() {
	status=$1 name=$2
	shift 2
	KTAP_N=$((KTAP_N + 1))
	for line in "$@"; do echo "# $line"; done
	if [ "$status" = 0 ]; then
		echo "ok $KTAP_N - $name"
	else
		echo "not ok $KTAP_N - $name"
		KTAP_FAIL=$((KTAP_FAIL + 1))
	fi
}

# ktap_expect_eq NAME EXPECTED OBSERVED
ktap_expect_eq() {
	[ "$2" = "$3" ]
	ktap_result $? "$1" "expected $2, observed $3"
}

ktap_finished() {
	echo "# totals: $((KTAP_N - KTAP_FAIL)) passed, $KTAP_FAIL failed"
	[ "$KTAP_FAIL" = 0 ]
}

