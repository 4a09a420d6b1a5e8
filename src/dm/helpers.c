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

/* Partitions of one disk share its gendisk. */
bool dmr_bdev_same_disk(struct block_device *a, struct block_device *b)
{
	return a->bd_disk == b->bd_disk;
}

bool dmr_log_ratelimit(void)
{
	return __ratelimit(&dmr_log_rs);
}

int dmr_bio_copy(struct bio *bio, const struct bvec_iter *saved, unsigned int skip, void *buf,
		 unsigned int len, bool to_bio)
{
	struct bvec_iter start = *saved;
	struct bvec_iter iter;
	struct bio_vec bv;

	if (!bio_has_data(bio) || skip > start.bi_size || len > start.bi_size - skip)
		return -EINVAL;
	bio_advance_iter(bio, &start, skip);
	start.bi_size = len;
	__bio_for_each_segment(bv, bio, iter, start) {
		if (to_bio)
			memcpy_to_bvec(&bv, buf);
		else
			memcpy_from_bvec(buf, &bv);
		buf += bv.bv_len;
	}
	return 0;
}

struct workqueue_struct *dmr_alloc_workqueue(const char *name)
{
	return alloc_workqueue("dm-remap-v4/%s", WQ_UNBOUND | WQ_MEM_RECLAIM, 1, name);
}

unsigned int dmr_noio_save(void)
{
	return memalloc_noio_save();
}

void dmr_noio_restore(unsigned int flags)
{
	memalloc_noio_restore(flags);
}

void dmr_xa_init(struct xarray *xa)
{
	xa_init(xa);
}

void dmr_xa_destroy(struct xarray *xa)
{
	xa_destroy(xa);
}

bool dmr_xa_load_value(struct xarray *xa, unsigned long index, unsigned long *value)
{
	void *entry = xa_load(xa, index);

	if (!xa_is_value(entry))
		return false;
	*value = xa_to_value(entry);
	return true;
}

bool dmr_xa_find_index(struct xarray *xa, unsigned long first, unsigned long last, unsigned long *index)
{
	unsigned long i = first;

	if (!xa_find(xa, &i, last, XA_PRESENT))
		return false;
	*index = i;
	return true;
}

int dmr_xa_store_value(struct xarray *xa, unsigned long index, unsigned long value)
{
	return xa_err(xa_store(xa, index, xa_mk_value(value), GFP_KERNEL));
}

bool dmr_xa_erase_value(struct xarray *xa, unsigned long index, unsigned long *old)
{
	void *entry = xa_erase(xa, index);

	if (!xa_is_value(entry))
		return false;
	*old = xa_to_value(entry);
	return true;
}

/* The counters are handed to Rust without the __percpu address space, which only sparse checks. */
u64 *dmr_percpu_alloc(unsigned int n)
{
	return (u64 __force *)__alloc_percpu(array_size(n, sizeof(u64)), __alignof__(u64));
}

void dmr_percpu_free(u64 *counters)
{
	free_percpu((u64 __percpu __force *)counters);
}

void dmr_percpu_add(u64 *counters, unsigned int i, u64 value)
{
	this_cpu_add(((u64 __percpu __force *)counters)[i], value);
}

u64 dmr_percpu_sum(u64 *counters, unsigned int i)
{
	u64 __percpu *c = (u64 __percpu __force *)counters;
	u64 sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += *per_cpu_ptr(&c[i], cpu);
	return sum;
}

void dmr_percpu_zero(u64 *counters, unsigned int i)
{
	u64 __percpu *c = (u64 __percpu __force *)counters;
	int cpu;

	for_each_possible_cpu(cpu)
		*per_cpu_ptr(&c[i], cpu) = 0;
}
