/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Input of bindgen for dm-remap-v4's device-mapper bindings (see src/Kbuild).
 *
 * The kernel's own `bindings` crate does not cover <linux/device-mapper.h>. The constants below are macros
 * with casts that bindgen cannot evaluate; spelling them as typed constants lets bindgen emit their values
 * (the trick rust/bindings/bindings_helper.h uses).
 */
#include <linux/device-mapper.h>

#include "helpers.h"

const blk_status_t DMR_BLK_STS_OK = BLK_STS_OK;
const blk_status_t DMR_BLK_STS_IOERR = BLK_STS_IOERR;
const blk_opf_t DMR_REQ_OP_MASK = REQ_OP_MASK;
const blk_opf_t DMR_REQ_PREFLUSH = REQ_PREFLUSH;
const blk_opf_t DMR_REQ_FUA = REQ_FUA;
