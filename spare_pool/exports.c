// SPDX-License-Identifier: GPL-2.0
/*
 * Symbols of dm-remap-v4-spare-pool.ko for the core module. The functions are written in Rust
 * (dm_remap_v4_spare_pool.rs); out-of-tree Rust modules have no way to export a symbol, so the export table
 * entries are made here, in C.
 */
#include <linux/export.h>
#include <linux/types.h>

u32 dm_remap_v4_spare_pool_abi_version(void);
EXPORT_SYMBOL_GPL(dm_remap_v4_spare_pool_abi_version);

struct dm_remap_v4_spare_pool;
int dm_remap_v4_spare_pool_create(struct dm_remap_v4_spare_pool **out);
EXPORT_SYMBOL_GPL(dm_remap_v4_spare_pool_create);
int dm_remap_v4_spare_pool_add_spare(struct dm_remap_v4_spare_pool *h, u64 units, u32 same_device_as_main);
EXPORT_SYMBOL_GPL(dm_remap_v4_spare_pool_add_spare);
int dm_remap_v4_spare_pool_claim(struct dm_remap_v4_spare_pool *h, u32 spare, u64 unit);
EXPORT_SYMBOL_GPL(dm_remap_v4_spare_pool_claim);
int dm_remap_v4_spare_pool_allocate(struct dm_remap_v4_spare_pool *h, u32 *spare, u64 *unit);
EXPORT_SYMBOL_GPL(dm_remap_v4_spare_pool_allocate);
int dm_remap_v4_spare_pool_free(struct dm_remap_v4_spare_pool *h, u32 spare, u64 unit);
EXPORT_SYMBOL_GPL(dm_remap_v4_spare_pool_free);
void dm_remap_v4_spare_pool_counts(struct dm_remap_v4_spare_pool *h, u32 spare, u64 *used, u64 *total);
EXPORT_SYMBOL_GPL(dm_remap_v4_spare_pool_counts);
void dm_remap_v4_spare_pool_destroy(struct dm_remap_v4_spare_pool *h);
EXPORT_SYMBOL_GPL(dm_remap_v4_spare_pool_destroy);
int dm_remap_v4_spare_pool_check_min_spare(u64 main_sectors, u64 pool_sectors, u32 min_percent, u64 *required);
EXPORT_SYMBOL_GPL(dm_remap_v4_spare_pool_check_min_spare);
int dm_remap_v4_spare_pool_set_state(struct dm_remap_v4_spare_pool *h, u32 spare, u32 state);
EXPORT_SYMBOL_GPL(dm_remap_v4_spare_pool_set_state);
