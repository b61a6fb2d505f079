#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The module's exactness promises (docs/proc-interface.md), checked by
# cowstat-selftest against known workloads: prime page counts, several
# write orders, THP on and off, the zero page, two CPUs. KTAP output.
exec cowstat-selftest
