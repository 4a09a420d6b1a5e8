// SPDX-License-Identifier: GPL-2.0
/*
 * Symbols of dm-remap-v4-metadata.ko for the core module. The functions are written in Rust
 * (dm_remap_v4_metadata.rs); out-of-tree Rust modules have no way to export a symbol, so the export table
 * entries are made here, in C.
 */
#include <linux/export.h>
#include <linux/types.h>

u32 dm_remap_v4_metadata_abi_version(void);
EXPORT_SYMBOL_GPL(dm_remap_v4_metadata_abi_version);

/* struct dm_remap_v4_md_open_params / _report are OpenParams / OpenReport of metadata/src/abi.rs. */
struct block_device;
struct dm_remap_v4_md_open_params;
struct dm_remap_v4_md_open_report;
struct dm_remap_v4_md_store;
int dm_remap_v4_metadata_open(struct block_device *bdev,
			      const struct dm_remap_v4_md_open_params *params,
			      struct dm_remap_v4_md_open_report *report,
			      int (*sink)(void *ctx, const void *record), void *ctx,
			      struct dm_remap_v4_md_store **store, const char **error);
EXPORT_SYMBOL_GPL(dm_remap_v4_metadata_open);

void dm_remap_v4_metadata_close(struct dm_remap_v4_md_store *store);
EXPORT_SYMBOL_GPL(dm_remap_v4_metadata_close);

int dm_remap_v4_metadata_commit(struct dm_remap_v4_md_store *store, const void *records, size_t n,
				int (*table)(void *ctx, void *record), void *ctx, const char **error);
EXPORT_SYMBOL_GPL(dm_remap_v4_metadata_commit);

u64 dm_remap_v4_metadata_version(const struct dm_remap_v4_md_store *store);
EXPORT_SYMBOL_GPL(dm_remap_v4_metadata_version);

int dm_remap_v4_metadata_resync(struct dm_remap_v4_md_store *store, u64 seq, u32 member_count,
				u32 removed_members, int (*table)(void *ctx, void *record), void *ctx,
				const char **error);
EXPORT_SYMBOL_GPL(dm_remap_v4_metadata_resync);

int dm_remap_v4_metadata_check_unchanged(struct dm_remap_v4_md_store *store, const char **error);
EXPORT_SYMBOL_GPL(dm_remap_v4_metadata_check_unchanged);

int dm_remap_v4_metadata_plan_format(const struct dm_remap_v4_md_open_params *params, u64 *pool_units,
				     u64 *needed_sectors, const char **error);
EXPORT_SYMBOL_GPL(dm_remap_v4_metadata_plan_format);

/* struct dm_remap_v4_md_scrub_state is ScrubStateAbi of metadata/src/abi.rs. */
struct dm_remap_v4_md_scrub_state;
int dm_remap_v4_metadata_scrub_load(struct dm_remap_v4_md_store *store,
				    struct dm_remap_v4_md_scrub_state *out);
EXPORT_SYMBOL_GPL(dm_remap_v4_metadata_scrub_load);

int dm_remap_v4_metadata_scrub_save(struct dm_remap_v4_md_store *store,
				    const struct dm_remap_v4_md_scrub_state *state, const char **error);
EXPORT_SYMBOL_GPL(dm_remap_v4_metadata_scrub_save);

u64 dm_remap_v4_metadata_last_seq(const struct dm_remap_v4_md_store *store);
EXPORT_SYMBOL_GPL(dm_remap_v4_metadata_last_seq);

int dm_remap_v4_metadata_mark_dirty(struct dm_remap_v4_md_store *store, const char **error);
EXPORT_SYMBOL_GPL(dm_remap_v4_metadata_mark_dirty);

int dm_remap_v4_metadata_mark_clean(struct dm_remap_v4_md_store *store, const char **error);
EXPORT_SYMBOL_GPL(dm_remap_v4_metadata_mark_clean);
