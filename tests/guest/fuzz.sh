#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Bad input against every /proc/cowstat file (fixed seed, bounded): random
# and oversized writes, writes at offsets, tiny reads, lseek, pread. KTAP.
# 2000 inputs per writable file here (about 6 s); the reliability lane
# runs 10,000 on the debug kernel.
exec cowstat-fuzz 2000
