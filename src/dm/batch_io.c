// SPDX-License-Identifier: GPL-2.0
/*
 * Writes submitted together and waited for together: see dmr_write_all() in helpers.h.
 *
 * This is C because it builds bios by hand (bio_init() on memory of its own, an end_io callback sharing one
 * completion); the Rust side (src/dm/batch.rs) fills the array and reads the results.
 */

#include <linux/completion.h>
#include <linux/slab.h>

#include "helpers.h"

struct dmr_write_bio {
	struct bio bio;
	struct bio_vec bv;
};

struct dmr_write_wait {
	atomic_t pending;
	struct completion done;
};

static void dmr_write_all_end_io(struct bio *bio)
{
	struct dmr_write_wait *wait = bio->bi_private;

	if (atomic_dec_and_test(&wait->pending))
		complete(&wait->done);
}

int dmr_write_all(struct dmr_write *w, unsigned int n)
{
	struct dmr_write_wait wait;
	struct dmr_write_bio *b;
	struct blk_plug plug;
	unsigned int i;

	if (!n)
		return 0;
	for (i = 0; i < n; i++)
		if (WARN_ON_ONCE(is_vmalloc_addr(w[i].buf)))
			return -EINVAL;
	/* The caller runs in a no-I/O allocation scope (the worker): this cannot recurse into our own I/O. */
	b = kmalloc_array(n, sizeof(*b), GFP_NOIO);
	if (!b)
		return -ENOMEM;
	atomic_set(&wait.pending, n);
	init_completion(&wait.done);
	blk_start_plug(&plug);
	for (i = 0; i < n; i++) {
		bio_init(&b[i].bio, w[i].bdev, &b[i].bv, 1, REQ_OP_WRITE | REQ_SYNC);
		b[i].bio.bi_iter.bi_sector = w[i].sector;
		bio_add_virt_nofail(&b[i].bio, w[i].buf, w[i].len);
		b[i].bio.bi_end_io = dmr_write_all_end_io;
		b[i].bio.bi_private = &wait;
		submit_bio(&b[i].bio);
	}
	blk_finish_plug(&plug);
	wait_for_completion_io(&wait.done);
	for (i = 0; i < n; i++) {
		w[i].error = blk_status_to_errno(b[i].bio.bi_status);
		bio_uninit(&b[i].bio);
	}
	kfree(b);
	return 0;
}
