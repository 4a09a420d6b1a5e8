//! KUnit tests of the exported C ABI, run inside the kernel when the module loads (CONFIG_KUNIT).

#[kernel::macros::kunit_tests(dm_remap_v4_setup_reassembly)]
mod tests {
    use crate::exports::{
        dm_remap_v4_calculate_confidence_score, dm_remap_v4_update_metadata_version,
        dm_remap_v4_verify_metadata_integrity,
    };
    use crate::md::layout::BLOCK_SIZE;
    use crate::md::superblock::{MainIdentity, Superblock, FORMAT_VERSION};
    use crate::score::{Inputs, IDENTIFIER_MATCH, YES};

    fn superblock(copy_index: u32) -> Superblock {
        Superblock {
            version: FORMAT_VERSION,
            copy_index,
            incompat: 0,
            compat: 0,
            uuid: [1; 16],
            member_index: 0,
            member_count: 1,
            removed_members: 0,
            main: MainIdentity {
                sectors: 1 << 21,
                logical_block_size: 512,
                id: [0; 64],
            },
            region_sectors: 0,
            pool_start: 0,
            pool_units: 1024,
            unit_sectors: 1,
            capacity: 1024,
            journal_blocks: 256,
            meta_version: 1,
            commit_seq: 0,
            journal_nonce: 5,
            checkpoint_entries: 0,
            checkpoint_crc: 0,
            active_area: 0,
        }
    }

    fn encoded(sb: &Superblock) -> [u8; BLOCK_SIZE] {
        let mut blk = [0u8; BLOCK_SIZE];
        sb.encode(&mut blk);
        blk
    }

    fn verify(blk: &[u8], copy: u32) -> i32 {
        // SAFETY: `blk` is a live slice of `blk.len()` bytes.
        unsafe { dm_remap_v4_verify_metadata_integrity(blk.as_ptr(), blk.len(), copy) }
    }

    #[test]
    fn verify_metadata_integrity() {
        let layout = crate::md::layout::Layout::new(1024, 256);
        assert!(layout.is_ok());
        let Ok(layout) = layout else { return };
        let mut sb = superblock(0);
        sb.region_sectors = layout.region_sectors;
        sb.pool_start = layout.region_sectors;
        let mut blk = encoded(&sb);
        assert_eq!(verify(&blk, 0), 0);
        assert_eq!(verify(&blk, 1), -(kernel::bindings::EUCLEAN as i32));
        assert_eq!(verify(&blk[..512], 0), -(kernel::bindings::EINVAL as i32));
        blk[200] ^= 1;
        assert_eq!(verify(&blk, 0), -(kernel::bindings::EUCLEAN as i32));
        assert_eq!(
            verify(&[0u8; BLOCK_SIZE], 0),
            -(kernel::bindings::ENODATA as i32)
        );
        // SAFETY: a null pointer is allowed and refused.
        let null = unsafe { dm_remap_v4_verify_metadata_integrity(core::ptr::null(), 4096, 0) };
        assert_eq!(null, -(kernel::bindings::EINVAL as i32));
    }

    #[test]
    fn calculate_confidence_score() {
        let perfect = Inputs {
            highest_sequence: 10,
            copies_valid: 2,
            copies_total: 2,
            members_found: 1,
            members_expected: 1,
            members_at_highest: 1,
            main_size_matches: YES,
            main_block_size_matches: YES,
            main_identifier: IDENTIFIER_MATCH,
            uuid_agree: YES,
            clean_shutdown: YES,
            ..Inputs::default()
        };
        // SAFETY: pointers to a live `Inputs`, or null.
        unsafe {
            assert_eq!(dm_remap_v4_calculate_confidence_score(&perfect), 100);
            let other_setup = Inputs {
                uuid_agree: 0,
                ..perfect
            };
            assert_eq!(dm_remap_v4_calculate_confidence_score(&other_setup), 0);
            assert_eq!(dm_remap_v4_calculate_confidence_score(core::ptr::null()), 0);
        }
    }

    #[test]
    fn update_metadata_version() {
        let mut next = 0u64;
        // SAFETY: `next` is a live `u64`, or the pointer is null.
        unsafe {
            assert_eq!(dm_remap_v4_update_metadata_version(41, &mut next), 0);
            assert_eq!(next, 42);
            assert_eq!(
                dm_remap_v4_update_metadata_version(u64::MAX, &mut next),
                -(kernel::bindings::EOVERFLOW as i32)
            );
            assert_eq!(next, 42);
            assert_eq!(
                dm_remap_v4_update_metadata_version(1, core::ptr::null_mut()),
                -(kernel::bindings::EINVAL as i32)
            );
        }
    }
}
