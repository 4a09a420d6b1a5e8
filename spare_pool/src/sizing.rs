//! Sizing: where a spare's pool area starts, how many units it holds, and the minimum spare
//! size policy.
//!
//! A unit is one logical block of the main device, so a remapped block is written whole and
//! aligned. The pool area starts at the first unit boundary at or after the end of the
//! metadata region: unit `0` can never overlap metadata.

use super::error::Error;

/// Bytes per sector, the unit of every device-mapper offset.
pub const SECTOR_BYTES: u32 = 512;

/// Sectors in one unit of `unit_bytes` bytes, refusing sizes that are not a power of two of at
/// least one sector (the kernel's rule for logical block sizes).
pub fn sectors_per_unit(unit_bytes: u32) -> Result<u64, Error> {
    if !unit_bytes.is_power_of_two() || unit_bytes < SECTOR_BYTES {
        return Err(Error::BadUnitSize);
    }
    Ok(u64::from(unit_bytes / SECTOR_BYTES))
}

/// First sector of the pool area: the metadata region rounded up to a whole unit.
pub fn pool_start_sector(metadata_sectors: u64, unit_bytes: u32) -> Result<u64, Error> {
    let per_unit = sectors_per_unit(unit_bytes)?;
    metadata_sectors
        .checked_next_multiple_of(per_unit)
        .ok_or(Error::Overflow)
}

/// Units in the pool area of a spare of `spare_sectors` sectors whose first
/// `metadata_sectors` sectors hold metadata; refuses a spare without room for one unit.
pub fn pool_units(
    spare_sectors: u64,
    metadata_sectors: u64,
    unit_bytes: u32,
) -> Result<u64, Error> {
    let per_unit = sectors_per_unit(unit_bytes)?;
    let start = pool_start_sector(metadata_sectors, unit_bytes)?;
    let units = spare_sectors
        .checked_sub(start)
        .and_then(|rest| rest.checked_div(per_unit))
        .unwrap_or(0);
    if units == 0 {
        return Err(Error::SpareTooSmallForMetadata);
    }
    Ok(units)
}

/// First sector on the spare of `unit` (no range check against the pool size: the bitmap
/// only hands out units below its count).
pub fn unit_to_sector(unit: u64, metadata_sectors: u64, unit_bytes: u32) -> Result<u64, Error> {
    let per_unit = sectors_per_unit(unit_bytes)?;
    let start = pool_start_sector(metadata_sectors, unit_bytes)?;
    unit.checked_mul(per_unit)
        .and_then(|offset| offset.checked_add(start))
        .ok_or(Error::Overflow)
}

/// Sectors of spare space the policy requires: `min_percent` percent of the main device,
/// rounded up so a policy is never met by rounding.
pub fn required_spare_sectors(main_sectors: u64, min_percent: u32) -> Result<u64, Error> {
    // u64 only: a u128 division needs a libgcc helper (`__udivti3`) the kernel does not have. The product
    // overflows only for a main device of more than 2^64 / 1000 sectors (8 EiB).
    main_sectors
        .checked_mul(u64::from(min_percent))
        .map(|scaled| scaled.div_ceil(100))
        .ok_or(Error::Overflow)
}

/// The minimum spare size policy: the spares' pool areas together (`spare_sectors_total`)
/// must hold at least `min_percent` percent of the main device. The error carries the
/// required size so the caller can report it.
pub fn check_min_spare(
    main_sectors: u64,
    spare_sectors_total: u64,
    min_percent: u32,
) -> Result<(), Error> {
    let required_sectors = required_spare_sectors(main_sectors, min_percent)?;
    if spare_sectors_total < required_sectors {
        return Err(Error::SpareTooSmall {
            required_sectors,
            available_sectors: spare_sectors_total,
        });
    }
    Ok(())
}
