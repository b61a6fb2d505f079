#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The course lab, tested (docs/lab/README.md): every `sh vm` block of the
# handout runs in ONE lab VM boot and each of its lab-expect observations
# must hold; lab/starter/hooks.rs differs from rust/hooks.rs only in its
# gaps; the exercise-9 host block builds and grades the starter (must fail
# with hints) and the solution (must pass); the student bundle unpacks, checks
# its SHA256SUMS and runs exercise 1 from its own lab/vm. KTAP output.
set -uo pipefail
cd "$(dirname "$0")/../.."
source tests/lib/ktap.sh

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cowstat-lab.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
extract=scripts/lab-extract

blocks=$($extract --list | awk '$2 == "vm" {print $1}')
nexpect=$($extract --expect | wc -l)
ktap_header
ktap_plan $(($(wc -w <<<"$blocks") + nexpect + 7))

# check_block OUTPUT N: block N's status and expectations in OUTPUT.
check_block() {
	local file=$1 n=$2 section st re i=0
	section=$(awk -v n="$n" '$0 == "LAB-BLOCK " n {on = 1; next}
		on && $1 == "LAB-BLOCK-END" {print; exit} on' "$file")
	st=$(sed -n 's/^LAB-BLOCK-END [0-9]* \([0-9]*\)$/\1/p' <<<"$section")
	ktap_expect_eq "handout_block_${n}_runs" 0 "${st:-missing}"
	while IFS=$'\t' read -r _ re; do
		i=$((i + 1))
		grep -Eq -- "$re" <<<"$section"
		ktap_result $? "handout_block_${n}_expect_$i" "lab-expect: $re"
	done < <($extract --expect --block "$n")
}

# 1. The handout's VM blocks, one boot. Their output goes to a file over a
# serial port, a terminal: TERM=dumb keeps cow-demo map from drawing live.
$extract --script >"$tmp/blocks.sh"
start=$SECONDS
lab/vm --timeout 300 --add "$tmp/blocks.sh:/root/blocks.sh" --out "$tmp/out" \
	-- sh -c 'exec >/dev/ttyS1 2>&1; TERM=dumb sh /root/blocks.sh' >"$tmp/console" 2>&1
ktap_info "handout VM: status $?, $((SECONDS - start)) s"
for n in $blocks; do check_block "$tmp/out" "$n"; done

# 2. Exercise 9: the starter is rust/hooks.rs with exactly the three gaps
# (each diff hunk holds its LAB TODO marker, so other drift fails here even
# when it still builds); then the handout's host block builds and grades
# the starter (must build, then fail with hints) and the solution (pass).
gaps=$(diff -U0 rust/hooks.rs lab/starter/hooks.rs | awk '
	/^@@/ { if (h) print h, t; h = $2; t = "none"; next }
	/^\+.*LAB TODO [0-9]+/ { match($0, /LAB TODO [0-9]+/); t = substr($0, RSTART + 9, RLENGTH - 9) }
	END { if (h) print h, t }')
[[ $(awk '{print $2}' <<<"$gaps" | tr '\n' ' ') == "1 2 3 " ]]
ktap_result $? "starter_differs_only_in_gaps" \
	"hunks of diff rust/hooks.rs lab/starter/hooks.rs (line, TODO): $(tr '\n' ' ' <<<"$gaps")"
host_cmd=$($extract --host)
[[ $host_cmd == *"lab/build-module starter"* ]]
ktap_result $? "handout_has_grader_block" "host block: $host_cmd"
start=$SECONDS
out=$(bash -c "$host_cmd" 2>&1); st=$?
ktap_info "starter build+grade: $((SECONDS - start)) s"
built=$(grep -m1 '^build-module: error' <<<"$out")
[[ -z $built ]] && grep -q '^FAIL .*zero_page' <<<"$out" && grep -q '^     hint: ' <<<"$out" &&
	grep -q '^grade: 4 of 7 checks passed$' <<<"$out"
ktap_result $? "grader_starter_fails_with_hints" "status $st; ${built:-built}; $(grep '^grade:' <<<"$out" | tr '\n' ' ')"
ktap_expect_eq "grader_starter_exit_status" 1 "$st"
start=$SECONDS
out=$(bash -c "${host_cmd//starter/solution}" 2>&1); st=$?
ktap_info "solution build+grade: $((SECONDS - start)) s"
[[ $st == 0 ]] && grep -q '^grade: PASS$' <<<"$out"
ktap_result $? "grader_solution_passes" "status $st; $(grep '^grade:\|^FAIL\|^build-module:' <<<"$out" | tr '\n' ' ')"

# 3. The student bundle: unpack, verify, run exercise 1 from it.
tarball=$(scripts/make-dist --out "$tmp/dist" --version test 2>"$tmp/dist.err")
mkdir -p "$tmp/student"
tar -C "$tmp/student" -xzf "$tarball" 2>/dev/null &&
	(cd "$tmp/student/cowstat-lab-test" && sha256sum --quiet -c SHA256SUMS)
ktap_result $? "bundle_unpacks_and_checksums" "$tarball $(head -1 "$tmp/dist.err")"
$extract --script --block 1 >"$tmp/block1.sh"
(cd "$tmp/student/cowstat-lab-test" &&
	env -u COWSTAT_BUILD PATH=/usr/bin:/bin lab/vm --timeout 120 \
		--add "$tmp/block1.sh:/root/b.sh" --out "$tmp/out1" \
		-- sh -c 'exec >/dev/ttyS1 2>&1; sh /root/b.sh') >"$tmp/console1" 2>&1
st=$?
fails=0
while IFS=$'\t' read -r _ re; do
	grep -Eq -- "$re" "$tmp/out1" || fails=$((fails + 1))
done < <($extract --expect --block 1)
[[ $st == 0 && $fails == 0 ]]
ktap_result $? "bundle_runs_exercise_1" "status $st, $fails expectation(s) unmet"
ktap_finished
