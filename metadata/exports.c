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
