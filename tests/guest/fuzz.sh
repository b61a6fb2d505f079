#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Bad input against every /proc/cowstat file (fixed seed, bounded): random
# and oversized writes, writes at offsets, tiny reads, lseek, pread. KTAP.
# The reliability lane runs it 2000 times on the debug kernel.
exec cowstat-fuzz 500
