/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Out-of-line wrappers for the static inline block-layer functions dm-remap-v4 calls.
 *
 * Rust cannot call a C `static inline` function, and an out-of-tree module cannot add to the kernel's
 * rust/helpers/. These are the module's own equivalent; each is a one-line forward.
 */
#ifndef DM_REMAP_V4_HELPERS_H
#define DM_REMAP_V4_HELPERS_H

#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/xarray.h>

void dmr_bio_set_dev(struct bio *bio, struct block_device *bdev);
sector_t dmr_bdev_nr_sectors(struct block_device *bdev);
unsigned int dmr_bdev_logical_block_size(struct block_device *bdev);
bool dmr_log_ratelimit(void);

/* An XArray of integer values (xa_mk_value), read without locks (the XArray uses RCU internally). */
void dmr_xa_init(struct xarray *xa);
void dmr_xa_destroy(struct xarray *xa);
bool dmr_xa_load_value(struct xarray *xa, unsigned long index, unsigned long *value);
bool dmr_xa_find_index(struct xarray *xa, unsigned long first, unsigned long last, unsigned long *index);
int dmr_xa_store_value(struct xarray *xa, unsigned long index, unsigned long value);

#endif
