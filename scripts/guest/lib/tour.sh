#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The guided tour `make demo` runs inside the test VM: cow-demo experiments,
# each introduced by a sentence or two. Stops at the first failing step.
set -e

say() {
	echo
	echo "== $1"
	shift
	for line in "$@"; do echo "   $line"; done
	echo
}

say "1. fork, then the child writes 4099 pages of a 64 MiB heap (THP off)" \
	"fork() copied no memory: parent and child share every page read-only." \
	"Each first write to a shared page copies exactly one 4 KiB page."
cow-demo fork --heap 64M --pages 4099 --thp off

say "2. the same with transparent huge pages" \
	"The heap is mapped with 2 MiB pages. Since Linux 5.8 a write into a shared" \
	"huge page splits it and still copies only one 4 KiB page."
cow-demo fork --heap 64M --pages 4099 --thp on

say "3. the child exits first, then the parent writes the same pages" \
	"The pages are no longer shared, so each write fault reuses the page:" \
	"wp_reuses rises, cow_copies does not."
cow-demo fork --heap 64M --pages 4099 --thp off --write-after-exit

say "4. the same as a picture: one cell per page of a 4 MiB heap" \
	"The child writes 23 pages (every 64th, so a stripe down the grid), then the" \
	"parent writes the same 23: the child copies each page, the parent then" \
	"reuses its original, which nobody else maps any more (r). The picture's" \
	"counts (pagemap frame numbers) must equal cowstat's counters."
cow-demo map --pages 23 --pattern stride:64 --writer both --plain

say "5. a BGSAVE-style snapshot while the parent keeps writing" \
	"The child saves the data as it was at fork time, while every parent write" \
	"to a still-shared page costs one copy."
cow-demo snapshot

say "6. the global counters after the tour" "(cat /proc/cowstat/stats)"
cat /proc/cowstat/stats
