//! The one audited way bytes become blocks: a checked cast that verifies
//! length and alignment (`bytemuck::try_cast_slice`) and says which buffer
//! failed.

use crate::Error;
use bytemuck::Pod;

/// Views `bytes` as a slice of `T` (a block struct or a float type), checking
/// that the length is a whole number of `T` and the start is aligned for `T`.
pub fn blocks<'a, T: Pod>(what: &'static str, bytes: &'a [u8]) -> Result<&'a [T], Error> {
    check::<T>(what, bytes.as_ptr() as usize, bytes.len())?;
    bytemuck::try_cast_slice(bytes).map_err(|_| Error::Misaligned { what, align: core::mem::align_of::<T>() })
}

/// Mutable twin of [`blocks`].
pub fn blocks_mut<'a, T: Pod>(what: &'static str, bytes: &'a mut [u8]) -> Result<&'a mut [T], Error> {
    check::<T>(what, bytes.as_ptr() as usize, bytes.len())?;
    bytemuck::try_cast_slice_mut(bytes).map_err(|_| Error::Misaligned { what, align: core::mem::align_of::<T>() })
}

fn check<T>(what: &'static str, addr: usize, len: usize) -> Result<(), Error> {
    let size = core::mem::size_of::<T>();
    if !len.is_multiple_of(size) {
        return Err(Error::Length { what, expected: len / size * size, got: len });
    }
    let align = core::mem::align_of::<T>();
    if !addr.is_multiple_of(align) {
        return Err(Error::Misaligned { what, align });
    }
    Ok(())
}
