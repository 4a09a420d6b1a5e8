//! Sizing helpers and the minimum spare size policy.

// Tests fail by panicking; the workspace's no-panic lints are for the shared logic only.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use dm_remap_v4_spare_pool::sizing::{
    check_min_spare, pool_start_sector, pool_units, required_spare_sectors, sectors_per_unit,
    unit_to_sector,
};
use dm_remap_v4_spare_pool::Error;

#[test]
fn unit_size_must_be_power_of_two_sectors() {
    assert_eq!(sectors_per_unit(512), Ok(1));
    assert_eq!(sectors_per_unit(4096), Ok(8));
    assert_eq!(sectors_per_unit(0), Err(Error::BadUnitSize));
    assert_eq!(sectors_per_unit(256), Err(Error::BadUnitSize));
    assert_eq!(sectors_per_unit(1536), Err(Error::BadUnitSize));
}

#[test]
fn pool_starts_on_a_unit_boundary_after_metadata() {
    assert_eq!(pool_start_sector(2048, 4096), Ok(2048));
    assert_eq!(pool_start_sector(2049, 4096), Ok(2056));
    assert_eq!(pool_start_sector(0, 4096), Ok(0));
    assert_eq!(pool_start_sector(u64::MAX, 4096), Err(Error::Overflow));
}

#[test]
fn pool_units_exclude_metadata_and_partial_units() {
    // 1 GiB spare, 1 MiB metadata, 4 KiB units.
    assert_eq!(pool_units(2_097_152, 2048, 4096), Ok(261_888));
    // A trailing partial unit is not a unit.
    assert_eq!(pool_units(2048 + 15, 2048, 4096), Ok(1));
    // Misaligned metadata end: the pool starts at 2056.
    assert_eq!(pool_units(2056 + 8, 2049, 4096), Ok(1));
    assert_eq!(
        pool_units(2048 + 7, 2048, 4096),
        Err(Error::SpareTooSmallForMetadata)
    );
    assert_eq!(
        pool_units(100, 2048, 4096),
        Err(Error::SpareTooSmallForMetadata)
    );
    assert_eq!(pool_units(10_000, 2048, 3000), Err(Error::BadUnitSize));
}

#[test]
fn unit_sectors_never_overlap_metadata() {
    assert_eq!(unit_to_sector(0, 2049, 4096), Ok(2056));
    assert_eq!(unit_to_sector(3, 2048, 4096), Ok(2048 + 24));
    assert_eq!(unit_to_sector(u64::MAX, 0, 4096), Err(Error::Overflow));
}

#[test]
fn min_spare_policy_rounds_up_and_carries_required_size() {
    assert_eq!(required_spare_sectors(1000, 5), Ok(50));
    assert_eq!(required_spare_sectors(1001, 5), Ok(51));
    // 8 EiB of main at the 1000% maximum still computes; beyond, the product overflows u64.
    let largest = u64::MAX / 1000;
    assert_eq!(required_spare_sectors(largest, 1000), Ok(largest * 10));
    assert_eq!(
        required_spare_sectors(u64::MAX, 1),
        Ok(u64::MAX.div_ceil(100))
    );
    assert_eq!(required_spare_sectors(u64::MAX, 100), Err(Error::Overflow));
    assert_eq!(check_min_spare(1000, 50, 5), Ok(()));
    let err = check_min_spare(1001, 50, 5).unwrap_err();
    assert_eq!(
        err,
        Error::SpareTooSmall {
            required_sectors: 51,
            available_sectors: 50
        }
    );
    assert_eq!(err.errno(), -28);
    assert_eq!(err.message(), "spare devices too small for the main device");
    assert_eq!(check_min_spare(1000, 0, 0), Ok(()));
}
