//! Administrative places by their six-digit division code (行政区划代码) `PPCCDD`:
//! a province is `PP0000` (140000 Shanxi), a city `PPCC00` (140500 Jincheng),
//! a county or district `PPCCDD` (140522 Yangcheng).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A valid six-digit place code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct PlaceCode(u32);

/// The level of a place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceLevel {
    /// 省
    Province,
    /// 市
    City,
    /// 县/区
    County,
}

/// Not a six-digit division code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("place code must be a six-digit administrative division code such as 140500 (got {0})")]
pub struct InvalidPlaceCode(pub String);

/// Chinese names of the places the platform serves: the province of the seed documents
/// (Shanxi, 山西) and its cities, and the counties the demo uses.
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

impl PlaceCode {
    /// The place's Chinese name (晋城市), or its code when the name is not known.
    pub fn name_zh(self) -> String {
        NAMES
            .iter()
            .find(|(code, _)| *code == self.0)
            .map_or_else(|| self.to_string(), |(_, n)| (*n).to_owned())
    }

    /// Parses a code from text such as `"140522"`.
    ///
    /// # Errors
    /// [`InvalidPlaceCode`] for anything that is not six digits with a non-zero province part.
    pub fn parse(s: &str) -> Result<PlaceCode, InvalidPlaceCode> {
        if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidPlaceCode(s.to_owned()));
        }
        s.parse::<u32>()
            .map_err(|_| InvalidPlaceCode(s.to_owned()))
            .and_then(PlaceCode::try_from)
    }

    /// The numeric code.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// Province, city or county.
    pub fn level(self) -> PlaceLevel {
        if self.0 % 10_000 == 0 {
            PlaceLevel::Province
        } else if self.0 % 100 == 0 {
            PlaceLevel::City
        } else {
            PlaceLevel::County
        }
    }

    /// The province this place lies in.
    pub fn province(self) -> PlaceCode {
        PlaceCode(self.0 / 10_000 * 10_000)
    }

    /// The city this place lies in (itself for a city; the province for a province).
    pub fn city(self) -> PlaceCode {
        match self.level() {
            PlaceLevel::Province => self,
            _ => PlaceCode(self.0 / 100 * 100),
        }
    }

    /// Whether `other` lies within `self`: a province covers its cities and counties,
    /// a city covers itself and its counties, a county only itself.
    pub fn covers(self, other: PlaceCode) -> bool {
        match self.level() {
            PlaceLevel::Province => other.province() == self,
            PlaceLevel::City => other.level() != PlaceLevel::Province && other.city() == self,
            PlaceLevel::County => other == self,
        }
    }
}

impl TryFrom<u32> for PlaceCode {
    type Error = InvalidPlaceCode;
    fn try_from(v: u32) -> Result<Self, Self::Error> {
        if (110_000..=999_999).contains(&v) {
            Ok(PlaceCode(v))
        } else {
            Err(InvalidPlaceCode(v.to_string()))
        }
    }
}

impl From<PlaceCode> for u32 {
    fn from(p: PlaceCode) -> u32 {
        p.0
    }
}

impl fmt::Display for PlaceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06}", self.0)
    }
}
