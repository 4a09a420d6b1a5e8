// SPDX-License-Identifier: GPL-2.0
/* Out-of-line wrappers for static inline block-layer functions: see helpers.h. */

#include <linux/ratelimit.h>

#include "helpers.h"

/* One rate limit for all of the module's warnings: an error storm must not flood the kernel log. */
static DEFINE_RATELIMIT_STATE(dmr_log_rs, DEFAULT_RATELIMIT_INTERVAL, DEFAULT_RATELIMIT_BURST);

void dmr_bio_set_dev(struct bio *bio, struct block_device *bdev)
{
	bio_set_dev(bio, bdev);
}

sector_t dmr_bdev_nr_sectors(struct block_device *bdev)
{
	return bdev_nr_sectors(bdev);
}

unsigned int dmr_bdev_logical_block_size(struct block_device *bdev)
{
	return bdev_logical_block_size(bdev);
}

bool dmr_log_ratelimit(void)
{
	return __ratelimit(&dmr_log_rs);
}
