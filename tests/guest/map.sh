#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# cow-demo map in the VM (KTAP): the live grid in a real terminal (tmux,
# 80x24, read back with capture-pane), then the final picture in plain
# mode, SVG and JSON, for prime page counts written by the child, the
# parent and both, in several orders. Every count is exact: the picture
# (pagemap) must equal cowstat's counters. About 20 s under TCG.
. "$(dirname "$0")/../lib/ktap.sh"
. "$(dirname "$0")/cowstat-lib.sh"

ktap_header
ktap_plan 13

# show TEXT: TEXT as KTAP diagnostic lines.
show() { echo "$1" | sed 's/^/# /'; }

# count_in TEXT CHAR: occurrences of CHAR in the grid rows of TEXT (lines
# that are an offset label, a space and 1 to 64 cells).
count_in() {
	echo "$1" | awk -v ch="$2" '
		/^ {0,5}[0-9]+[KMG]? [-.czprH]{1,64}$/ { n += gsub(ch, "", $2) }
		END { print n + 0 }'
}

# --- live, in tmux: the child writes 23 pages at 5 pages/s (~5 s).
if have_tmux; then
	tui_start map "cow-demo map --pages 23 --rate 5; printf 'exit %s' \$?; sleep 600"
	live=none i=0 screen=""
	while [ $i -lt 300 ]; do
		screen=$(tui_capture map)
		case $screen in *"exit "[0-9]*) break ;; esac
		# A frame in the middle of the writes: the status line, the cells
		# and cowstat must show the same number of pages.
		n=$(echo "$screen" | sed -n 's/.*child wrote \([0-9]*\) of 23; cowstat copies: child \([0-9]*\), parent 0.*/\1 \2/p')
		if [ -n "$n" ]; then
			set -- $n
			if [ "$1" -gt 0 ] && [ "$1" -lt 23 ]; then
				[ "$1 $2 $(count_in "$screen" c)" = "$1 $1 $1" ] && live=ok || live="bad: $1 $2 $(count_in "$screen" c)"
			fi
		fi
		i=$((i + 1))
		sleep 0.2
	done
	tui_stop map
	ktap_info "last screen:"
	echo "$screen" | sed 's/^/# | /'
	ktap_expect_eq live_frame_mid_write_cells_equal_cowstat ok "$live"
	ktap_expect_eq live_exit_status "exit 0" "$(echo "$screen" | grep -o 'exit [0-9]*')"
	echo "$screen" | grep -qx '. shared 1001  c copied by child 23  p copied by parent 0  r reused 0' &&
		echo "$screen" | grep -qx 'z zero-filled 0  H huge page 0  - not present 0'
	ktap_result $? live_legend_counts
	row0="     0 $(printf '%23s' | tr ' ' c)$(printf '%41s' | tr ' ' .)"
	[ "$(echo "$screen" | grep -c '^ *[0-9][0-9KM]* [.c]\{64\}$')" = 16 ] &&
		echo "$screen" | grep -qx "$row0"
	ktap_result $? live_grid_16_rows_first_23_cells_copied
	echo "$screen" | grep -qx 'map: 23 pages copied by child = cowstat child cow_copies 23: agree' &&
		echo "$screen" | grep -qx 'map: 0 pages copied by parent = cowstat parent cow_copies 0: agree'
	ktap_result $? live_agreement_lines
	[ "$(echo "$screen" | awk '{ if (length($0) > 80) n++ } END { print n + 0 }')" = 0 ]
	ktap_result $? live_fits_80_columns
else
	for t in live_frame_mid_write_cells_equal_cowstat live_exit_status live_legend_counts \
		live_grid_16_rows_first_23_cells_copied live_agreement_lines live_fits_80_columns; do
		echo "ok $((KTAP_N += 1)) - $t # SKIP no tmux in the guest"
	done
fi

# --- plain mode (stdout is a pipe): final picture once, no escapes.
out=$(cow-demo map --pages 23 --writer parent --pattern stride:37 2>&1)
st=$?
show "$(echo "$out" | tail -4)"
esc=$(printf '\033')
case $out in *"$esc"*) plain=escapes ;; *) plain=none ;; esac
ktap_expect_eq parent_k23_stride37_agree "0 none 23 map: 23 pages copied by parent = cowstat parent cow_copies 23: agree" \
	"$st $plain $(count_in "$out" p) $(echo "$out" | grep 'copied by parent =')"

out=$(cow-demo map --pages 101 --writer both --pattern random --seed 7 2>&1)
st=$?
show "$(echo "$out" | tail -5)"
ktap_expect_eq both_k101_random_child_copies_parent_reuses "0 101 101 OK" \
	"$st $(echo "$out" | sed -n 's/^map: \([0-9]*\) pages copied by child = cowstat child cow_copies \1: agree$/\1/p') $(echo "$out" | sed -n 's/^map: \([0-9]*\) pages reused by parent = cowstat parent wp_reuses \1: agree$/\1/p') $(echo "$out" | sed -n 's/^verdict: \([A-Z]*\).*/\1/p')"

out=$(cow-demo map --touch read --pages 23 --pattern random --seed 5 2>&1)
st=$?
ktap_expect_eq zero_k23_random_zero_filled "0 23 23" \
	"$st $(count_in "$out" z) $(echo "$out" | sed -n 's/^map: 23 zero pages filled by child = cowstat child cow_zero \(23\): agree$/\1/p')"

# Five 2 MiB huge pages written once each (stride 512): five splits, the
# other three of the 16 MiB heap stay huge (3 x 128 cells of 4 pages).
out=$(cow-demo map --heap 16M --thp on --pattern stride:512 --pages 5 2>&1)
st=$?
show "$(echo "$out" | tail -5)"
ktap_expect_eq thp_k5_splits_and_huge_cells "0 5 384 5" \
	"$st $(count_in "$out" c) $(count_in "$out" H) $(echo "$out" | sed -n 's/^map: 5 huge pages split by child = cowstat child thp_wp_faults \(5\): agree$/\1/p')"

# --- SVG and JSON of one run: 1021 random pages of 1024, one cell each.
json=$(cow-demo map --pages 1021 --pattern random --seed 3 --svg /tmp/map.svg --json 2>&1)
st=$?
svg_child=$(grep -c '^<rect class="child" ' /tmp/map.svg)
svg_shared=$(grep -c '^<rect class="shared" ' /tmp/map.svg)
svg_all=$(grep -c '^<rect class="[a-z]*" x=' /tmp/map.svg)
ktap_expect_eq svg_cells_per_state "0 1021 3 1024" "$st $svg_child $svg_shared $svg_all"
grep -q '^<?xml version="1.0"' /tmp/map.svg && tail -1 /tmp/map.svg | grep -qx '</svg>' &&
	grep -q 'map: 1021 pages copied by child = cowstat child cow_copies 1021: agree' /tmp/map.svg
ktap_result $? svg_document_with_agreement_caption
# JSON: one line, balanced braces and brackets (no string holds any), the
# cell counts and the agreement.
opens=$(printf '%s' "$json" | tr -cd '{[' | wc -c)
closes=$(printf '%s' "$json" | tr -cd '}]' | wc -c)
shape="$(echo "$json" | wc -l) $([ "$opens" -gt 0 ] && [ "$opens" = "$closes" ] && echo balanced || echo unbalanced)"
case $json in
'{"mode":"fork",'*'"cells":{"shared":3,"child":1021,"parent":0,"reused":0,"zero":0,"huge":0,"absent":0}'*'"verdict":"OK"'*'}') fields=ok ;;
*) fields=bad ;;
esac
ktap_expect_eq json_one_object_with_counts "1 balanced ok" "$shape $fields"
ktap_finished
