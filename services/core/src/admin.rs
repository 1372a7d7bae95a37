//! Administrators' roles. An administrator acts for a place: a province officer (省) sees and
//! manages everything in the province, a city officer (市) only that city and its counties.
//! Who holds which key is the platform's business (`admin-keys.json`); what a role may do is
//! decided by the services with [`AdminRole`] and [`crate::PlaceCode::covers`].

use serde::{Deserialize, Serialize};

/// An administrator's scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminRole {
    /// 省: programs and every campaign of the province.
    Province,
    /// 市: campaigns of one city and its counties.
    City,
}

impl AdminRole {
    /// `province` or `city`.
    pub fn as_str(self) -> &'static str {
        match self {
            AdminRole::Province => "province",
            AdminRole::City => "city",
        }
    }
}
