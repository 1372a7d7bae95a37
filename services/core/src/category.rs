//! Business categories of vouchers and merchants. A voucher is spent only at a merchant
//! of its own category (POLICY rule 5); `General` vouchers are accepted by any category.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A voucher or merchant category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// 餐饮
    Catering,
    /// 住宿
    Lodging,
    /// 文旅: A-level scenic-spot tickets, cultural products and experiences.
    CultureTourism,
    /// 家居: the 10% instant discount entitlement.
    HomeFurnishing,
    /// 通用: any participating merchant.
    General,
}

impl Category {
    /// All categories, in a stable order.
    pub const ALL: [Category; 5] = [
        Category::Catering,
        Category::Lodging,
        Category::CultureTourism,
        Category::HomeFurnishing,
        Category::General,
    ];

    /// The stable snake_case name used in the API and the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Category::Catering => "catering",
            Category::Lodging => "lodging",
            Category::CultureTourism => "culture_tourism",
            Category::HomeFurnishing => "home_furnishing",
            Category::General => "general",
        }
    }

    /// Whether a voucher of this category may be spent at a merchant of `merchant`'s category.
    pub fn accepted_by(self, merchant: Category) -> bool {
        self == Category::General || self == merchant
    }
}

/// Not a known category name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown category {0:?}")]
pub struct UnknownCategory(pub String);

impl FromStr for Category {
    type Err = UnknownCategory;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCategory(s.to_owned()))
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
