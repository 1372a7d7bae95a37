//! A campaign: vouchers of one category and rule, owned by one city or county, released
//! in timed rounds, valid for a window after claiming, limited per person and by a budget.
//!
//! Stock accounting (kept by the claim script in Redis, recomputable from PostgreSQL):
//! `stock = pool (not yet released, recycled stock included) + live (released, unclaimed)
//!        + claimed − recycled`.
//! When round *n* opens it releases `min(pool, quantity_n + recycled since the last release)`;
//! what a round leaves unclaimed stays live for the next.

use crate::category::Category;
use crate::identity::Identity;
use crate::ids::{CampaignId, ProgramId};
use crate::money::Fen;
use crate::place::PlaceCode;
use crate::rule::Rule;
use chrono::{DateTime, Timelike as _, Utc};
use serde::{Deserialize, Serialize};

/// The largest values a campaign's counts may take, checked when a request is parsed (so a
/// number too large for the record, or for date arithmetic, is a 400 naming the field, never
/// an overflow further down). The API documents them.
pub mod bounds {
    use serde::{Deserialize, Deserializer};

    /// Most vouchers in a campaign (and in one round).
    pub const MAX_STOCK: u32 = 100_000_000;
    /// Most vouchers of one campaign per person.
    pub const MAX_PER_PERSON_LIMIT: u32 = 10_000;
    /// Highest round number.
    pub const MAX_ROUND_NO: u32 = 10_000;
    /// Longest validity after the claim, in days (ten years).
    pub const MAX_VALIDITY_DAYS: u32 = 3_660;

    fn at_most<'de, D: Deserializer<'de>>(d: D, max: u32) -> Result<u32, D::Error> {
        let v = u32::deserialize(d)?;
        if v > max {
            return Err(serde::de::Error::custom(format!(
                "{v} is too large: at most {max}"
            )));
        }
        Ok(v)
    }

    /// `stock` and a round's `quantity`: at most [`MAX_STOCK`].
    ///
    /// # Errors
    /// Not an unsigned integer, or too large.
    pub fn stock<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        at_most(d, MAX_STOCK)
    }

    /// `per_person_limit`: at most [`MAX_PER_PERSON_LIMIT`].
    ///
    /// # Errors
    /// Not an unsigned integer, or too large.
    pub fn per_person_limit<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        at_most(d, MAX_PER_PERSON_LIMIT)
    }

    /// `round_no`: at most [`MAX_ROUND_NO`].
    ///
    /// # Errors
    /// Not an unsigned integer, or too large.
    pub fn round_no<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        at_most(d, MAX_ROUND_NO)
    }

    /// An optional `round_no`.
    ///
    /// # Errors
    /// Not an unsigned integer, or too large.
    pub fn optional_round_no<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        optional(d, MAX_ROUND_NO)
    }

    /// `validity.days_after_claim`: at most [`MAX_VALIDITY_DAYS`].
    ///
    /// # Errors
    /// Not an unsigned integer, or too large.
    pub fn validity_days<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        optional(d, MAX_VALIDITY_DAYS)
    }

    fn optional<'de, D: Deserializer<'de>>(d: D, max: u32) -> Result<Option<u32>, D::Error> {
        match Option::<u32>::deserialize(d)? {
            Some(v) if v > max => Err(serde::de::Error::custom(format!(
                "{v} is too large: at most {max}"
            ))),
            other => Ok(other),
        }
    }
}

/// A release round: at `starts_at`, `quantity` vouchers (plus recycled stock) go on sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Round {
    /// 1, 2, 3 … in order of start time.
    #[serde(deserialize_with = "bounds::round_no")]
    pub round_no: u32,
    /// When the round opens.
    pub starts_at: DateTime<Utc>,
    /// How many vouchers it releases (recycled stock comes on top).
    #[serde(deserialize_with = "bounds::stock")]
    pub quantity: u32,
}

/// How long a claimed voucher may be spent. At least one of the two is set; with both,
/// the earlier end wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validity {
    /// Days after the claim (commonly 7).
    #[serde(default, deserialize_with = "bounds::validity_days")]
    pub days_after_claim: Option<u32>,
    /// An absolute last moment.
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
}

impl Validity {
    /// The window `(valid_from, valid_until)` of a voucher claimed at `claimed_at`.
    pub fn window(&self, claimed_at: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let from = claimed_at.with_nanosecond(0).unwrap_or(claimed_at);
        let by_days = self
            .days_after_claim
            .map(|d| from + chrono::Duration::days(i64::from(d)));
        let until = match (by_days, self.ends_at) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) => a,
            (None, Some(b)) => b,
            // validate() refuses this; a window of zero length is the safe reading.
            (None, None) => from,
        };
        let until = until.with_nanosecond(0).unwrap_or(until);
        (from, until)
    }
}

/// Who may claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Eligibility {
    /// Residents of any of these places (a city covers its counties). Empty = the owner place.
    #[serde(default)]
    pub places: Vec<PlaceCode>,
    /// Minimum real-name verification level of the identity token (0–3).
    #[serde(default)]
    pub min_real_name_level: u8,
}

/// How vouchers reach residents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    /// Residents claim in timed rounds (the rush).
    Claim,
    /// Administrators issue to an uploaded list (union vouchers, love vouchers); no rounds.
    List,
}

/// Whether claims are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    /// Claims accepted when a round is open.
    Active,
    /// Paused by an administrator: claims refused.
    Paused,
}

/// What an administrator submits to create a campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCampaign {
    /// The funding program.
    pub program_id: ProgramId,
    /// Human name, e.g. "晋城餐饮券 满100减20".
    pub name: String,
    /// The city or county that issues it (e.g. 140500 Jincheng, 140522 Yangcheng).
    pub owner_place: PlaceCode,
    /// Category of merchants that accept it.
    pub category: Category,
    /// The discount rule.
    pub rule: Rule,
    /// Total vouchers.
    #[serde(deserialize_with = "bounds::stock")]
    pub stock: u32,
    /// Vouchers one person may claim (across devices and rounds).
    #[serde(deserialize_with = "bounds::per_person_limit")]
    pub per_person_limit: u32,
    /// Release rounds, strictly increasing start times, numbered 1.. (empty for `List`).
    #[serde(default)]
    pub rounds: Vec<Round>,
    /// Validity after claim.
    pub validity: Validity,
    /// Most that discounts of this campaign may grant in total.
    pub budget: Fen,
    /// Who may claim.
    pub eligibility: Eligibility,
    /// Rush claims or list issuance.
    pub distribution: Distribution,
}

/// A campaign as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Campaign {
    /// Assigned by the database.
    pub id: CampaignId,
    /// Active or paused.
    pub status: CampaignStatus,
    /// The spec.
    #[serde(flatten)]
    pub spec: NewCampaign,
}

/// A campaign spec that cannot be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidCampaign {
    /// Name empty or longer than 200 characters.
    #[error("name must be 1-200 characters")]
    Name,
    /// The owner must be a city or county.
    #[error("owner_place must be a city or county code")]
    OwnerLevel,
    /// Bad rule.
    #[error(transparent)]
    Rule(#[from] crate::rule::InvalidRule),
    /// Percent rules belong to home furnishing, threshold rules to the others.
    #[error("rule {rule} does not fit category {category}")]
    RuleCategory {
        /// The rule kind.
        rule: &'static str,
        /// The category.
        category: Category,
    },
    /// Zero stock.
    #[error("stock must be greater than zero")]
    ZeroStock,
    /// Zero per-person limit.
    #[error("per_person_limit must be greater than zero")]
    ZeroLimit,
    /// Rounds not numbered 1.. in order of strictly increasing start, or a zero quantity.
    #[error("rounds must be numbered 1, 2, … with strictly increasing start times and positive quantities")]
    Rounds,
    /// A claim campaign needs rounds; a list campaign has none.
    #[error("a claim campaign needs at least one round; a list campaign has none")]
    RoundsForDistribution,
    /// Neither days nor end set, or zero days.
    #[error("validity needs days_after_claim > 0 and/or ends_at")]
    Validity,
    /// Zero budget.
    #[error("budget must be greater than zero")]
    ZeroBudget,
    /// An eligible place outside the owner's province.
    #[error("eligible place {0} is outside the owner's province")]
    EligiblePlace(PlaceCode),
    /// Real-name level above 3.
    #[error("min_real_name_level must be 0-3")]
    RealNameLevel,
}

/// Why a person may not claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Ineligible {
    /// Home place not among the eligible places.
    #[error("this campaign is for residents of other places")]
    Place,
    /// Real-name level too low.
    #[error("this campaign needs a higher real-name verification level")]
    RealNameLevel,
}

impl NewCampaign {
    /// Checks the spec.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), InvalidCampaign> {
        use crate::place::PlaceLevel;
        let len = self.name.trim().chars().count();
        if len == 0 || len > 200 {
            return Err(InvalidCampaign::Name);
        }
        if self.owner_place.level() == PlaceLevel::Province {
            return Err(InvalidCampaign::OwnerLevel);
        }
        self.rule.validate()?;
        let fits = match self.rule {
            Rule::Percent { .. } => self.category == Category::HomeFurnishing,
            Rule::Threshold { .. } => self.category != Category::HomeFurnishing,
        };
        if !fits {
            let rule = if self.rule.is_single_use() {
                "threshold"
            } else {
                "percent"
            };
            return Err(InvalidCampaign::RuleCategory {
                rule,
                category: self.category,
            });
        }
        if self.stock == 0 {
            return Err(InvalidCampaign::ZeroStock);
        }
        if self.per_person_limit == 0 {
            return Err(InvalidCampaign::ZeroLimit);
        }
        match (self.distribution, self.rounds.is_empty()) {
            (Distribution::Claim, true) | (Distribution::List, false) => {
                return Err(InvalidCampaign::RoundsForDistribution)
            }
            _ => {}
        }
        for (i, round) in self.rounds.iter().enumerate() {
            let numbered = usize::try_from(round.round_no).is_ok_and(|n| n == i + 1);
            let later = i == 0 || self.rounds[i - 1].starts_at < round.starts_at;
            if !numbered || !later || round.quantity == 0 {
                return Err(InvalidCampaign::Rounds);
            }
        }
        if self.validity.days_after_claim == Some(0)
            || (self.validity.days_after_claim.is_none() && self.validity.ends_at.is_none())
        {
            return Err(InvalidCampaign::Validity);
        }
        if self.budget == Fen::ZERO {
            return Err(InvalidCampaign::ZeroBudget);
        }
        if let Some(p) = self
            .eligibility
            .places
            .iter()
            .find(|p| p.province() != self.owner_place.province())
        {
            return Err(InvalidCampaign::EligiblePlace(*p));
        }
        if self.eligibility.min_real_name_level > 3 {
            return Err(InvalidCampaign::RealNameLevel);
        }
        Ok(())
    }

    /// Checks a new round against the existing ones (number and start follow the last).
    ///
    /// # Errors
    /// [`InvalidCampaign::Rounds`] or [`InvalidCampaign::RoundsForDistribution`].
    pub fn validate_new_round(&self, round: &Round) -> Result<(), InvalidCampaign> {
        if self.distribution == Distribution::List {
            return Err(InvalidCampaign::RoundsForDistribution);
        }
        let expected = u32::try_from(self.rounds.len())
            .ok()
            .and_then(|n| n.checked_add(1));
        let later = self
            .rounds
            .last()
            .is_none_or(|last| last.starts_at < round.starts_at);
        if Some(round.round_no) != expected || !later || round.quantity == 0 {
            return Err(InvalidCampaign::Rounds);
        }
        Ok(())
    }
}

impl Campaign {
    /// Whether `who` may claim (places and real-name level).
    ///
    /// # Errors
    /// The reason they may not.
    pub fn check_eligibility(&self, who: &Identity) -> Result<(), Ineligible> {
        let places = &self.spec.eligibility.places;
        let allowed = if places.is_empty() {
            self.spec.owner_place.covers(who.home)
        } else {
            places.iter().any(|p| p.covers(who.home))
        };
        if !allowed {
            return Err(Ineligible::Place);
        }
        if who.real_name_level < self.spec.eligibility.min_real_name_level {
            return Err(Ineligible::RealNameLevel);
        }
        Ok(())
    }

    /// The round open at `now` (the latest that has started), if any.
    pub fn current_round(&self, now: DateTime<Utc>) -> Option<&Round> {
        self.spec
            .rounds
            .iter()
            .filter(|r| r.starts_at <= now)
            .max_by_key(|r| r.starts_at)
    }

    /// The first round starting after `now`, if any.
    pub fn next_round(&self, now: DateTime<Utc>) -> Option<&Round> {
        self.spec
            .rounds
            .iter()
            .filter(|r| r.starts_at > now)
            .min_by_key(|r| r.starts_at)
    }
}
