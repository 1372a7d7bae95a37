//! Names of the places reports show (so a finance officer reads 晋城, not 140500): the
//! cities of Shanxi (山西), the province of the seed documents. A code not listed prints as
//! its number.

use voucher_core::PlaceCode;

const NAMES: [(u32, &str); 13] = [
    (140_000, "山西省"),
    (140_100, "太原市"),
    (140_200, "大同市"),
    (140_300, "阳泉市"),
    (140_400, "长治市"),
    (140_500, "晋城市"),
    (140_600, "朔州市"),
    (140_700, "晋中市"),
    (140_800, "运城市"),
    (140_900, "忻州市"),
    (141_000, "临汾市"),
    (141_100, "吕梁市"),
    (140_522, "阳城县"),
];

/// The Chinese name of `place`, or its code.
pub fn name(place: PlaceCode) -> String {
    NAMES
        .iter()
        .find(|(code, _)| *code == place.get())
        .map_or_else(|| place.to_string(), |(_, n)| (*n).to_owned())
}
