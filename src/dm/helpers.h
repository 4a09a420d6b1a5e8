/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C that dm-remap-v4's Rust calls: out-of-line wrappers for static inline block-layer and per-CPU
 * functions, and dmr_write_all() (batch_io.c).
 *
 * Rust cannot call a C `static inline` function, and an out-of-tree module cannot add to the kernel's
 * rust/helpers/. The wrappers (helpers.c) are the module's own equivalent, most a one-line forward.
 */
#ifndef DM_REMAP_V4_HELPERS_H
#define DM_REMAP_V4_HELPERS_H

#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/percpu.h>
#include <linux/sched/mm.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

void dmr_bio_set_dev(struct bio *bio, struct block_device *bdev);
sector_t dmr_bdev_nr_sectors(struct block_device *bdev);
unsigned int dmr_bdev_logical_block_size(struct block_device *bdev);
bool dmr_bdev_same_disk(struct block_device *a, struct block_device *b);
bool dmr_log_ratelimit(void);

/*
 * Copies `len` bytes between `buf` and the data of `bio` described by `saved` (an iterator saved when the bio was
 * mapped), starting `skip` bytes in. Returns -EINVAL when the range is outside the saved iterator.
 */
int dmr_bio_copy(struct bio *bio, const struct bvec_iter *saved, unsigned int skip, void *buf,
		 unsigned int len, bool to_bio);

/* A workqueue for the target's deferred bios; WQ_MEM_RECLAIM so that I/O makes progress under memory pressure. */
struct workqueue_struct *dmr_alloc_workqueue(const char *name);

/* Allocations in this scope do not recurse into I/O (the worker completes I/O that reclaim may wait for). */
unsigned int dmr_noio_save(void);
void dmr_noio_restore(unsigned int flags);

/*
 * `n` per-CPU u64 counters (alloc_percpu): an update is one this_cpu_add, with no cache line shared between
 * CPUs; a read sums over the possible CPUs. NULL when out of memory.
 */
u64 *dmr_percpu_alloc(unsigned int n);
void dmr_percpu_free(u64 *counters);
void dmr_percpu_add(u64 *counters, unsigned int i, u64 value);
u64 dmr_percpu_sum(u64 *counters, unsigned int i);
void dmr_percpu_zero(u64 *counters, unsigned int i);

/* One write of dmr_write_all(): `len` bytes of the kmalloc'ed `buf` at `sector` of `bdev`; `error` is its result. */
struct dmr_write {
	struct block_device *bdev;
	sector_t sector;
	void *buf;
	unsigned int len;
	int error;
};

/*
 * Submits the `n` writes together and sleeps until all complete, setting each one's `error` (src/dm/batch_io.c).
 * Returns an error, with nothing submitted, when the bios cannot be allocated (-ENOMEM) or a buffer is not
 * direct-mapped (-EINVAL).
 */
int dmr_write_all(struct dmr_write *w, unsigned int n);

/* An XArray of integer values (xa_mk_value), read without locks (the XArray uses RCU internally). */
void dmr_xa_init(struct xarray *xa);
void dmr_xa_destroy(struct xarray *xa);
bool dmr_xa_load_value(struct xarray *xa, unsigned long index, unsigned long *value);
bool dmr_xa_find_index(struct xarray *xa, unsigned long first, unsigned long last, unsigned long *index);
int dmr_xa_store_value(struct xarray *xa, unsigned long index, unsigned long value);
bool dmr_xa_erase_value(struct xarray *xa, unsigned long index, unsigned long *old);

#endif
