// SPDX-License-Identifier: GPL-2.0
/*
 * A deliberate leak, to show that the debug lane's kmemleak check can fail.
 *
 * Loaded by tests/debug/kmemleak-selftest.sh in a boot of its own, first in
 * every `scripts/test-debug` (or alone with --plant-leak), never with
 * cowstat. Its name starts with "cowstat" because the check once kept only
 * objects with "cowstat" in their backtrace; this module showed that such a
 * filter misses every leak of an unloaded module (docs/reliability.md).
 */
#include <linux/module.h>
#include <linux/slab.h>

/* A prime count, so that a miscount by a constant factor shows. */
#define PLANTED 7

static int __init cowstat_plant_leak_init(void)
{
	int i;

	for (i = 0; i < PLANTED; i++) {
		void *p = kmalloc(64, GFP_KERNEL);

		if (!p)
			return -ENOMEM;
		/* %p prints a hash: no copy of the address stays reachable. */
		pr_info("cowstat_plant_leak: object %d at %p, never freed\n", i, p);
	}
	return 0;
}

static void __exit cowstat_plant_leak_exit(void)
{
}

module_init(cowstat_plant_leak_init);
module_exit(cowstat_plant_leak_exit);
MODULE_DESCRIPTION("Leaks 7 objects on purpose: a self-test of the kmemleak check");
MODULE_LICENSE("GPL");
