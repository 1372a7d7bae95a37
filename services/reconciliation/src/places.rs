//! Names of the places reports show (so a finance officer reads 晋城, not 140500): the
//! domain's table ([`voucher_core::PlaceCode::name_zh`]). A code not listed prints as its
//! number.

use voucher_core::PlaceCode;

/// The Chinese name of `place`, or its code.
pub fn name(place: PlaceCode) -> String {
    place.name_zh()
}
