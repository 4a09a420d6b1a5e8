// SPDX-License-Identifier: GPL-2.0
/*
 * Symbols of dm-remap-v4-setup-reassembly.ko for the core module. The functions are written in Rust
 * (dm_remap_v4_setup_reassembly.rs); out-of-tree Rust modules have no way to export a symbol, so the export table
 * entries are made here, in C.
 */
#include <linux/export.h>
#include <linux/types.h>

u32 dm_remap_v4_setup_reassembly_abi_version(void);
EXPORT_SYMBOL_GPL(dm_remap_v4_setup_reassembly_abi_version);

int dm_remap_v4_verify_metadata_integrity(const u8 *block, size_t len, u32 copy);
EXPORT_SYMBOL_GPL(dm_remap_v4_verify_metadata_integrity);

/* struct dm_remap_v4_confidence_inputs is the #[repr(C)] Inputs of reassembly/src/score.rs. */
struct dm_remap_v4_confidence_inputs;
u8 dm_remap_v4_calculate_confidence_score(const struct dm_remap_v4_confidence_inputs *inputs);
EXPORT_SYMBOL_GPL(dm_remap_v4_calculate_confidence_score);

int dm_remap_v4_update_metadata_version(u64 current_version, u64 *next);
EXPORT_SYMBOL_GPL(dm_remap_v4_update_metadata_version);
