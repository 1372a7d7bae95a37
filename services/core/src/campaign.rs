//! A campaign: vouchers of one category and rule, owned by one city or county, released
//! in timed rounds, valid for a window after claiming, limited per person and by a budget.
//!
//! Stock accounting (kept by the claim script in Redis, recomputable from PostgreSQL):
//! `stock = pool (not yet released, recycled stock included) + live (released, unclaimed)
//!        + claimed − recycled`.
//! When round *n* opens it releases `min(pool, quantity_n + recycled since the last release)`;
//! what a round leaves unclaimed stays live for the next.
//!
//! A round is a rush (claims from its start) or a lottery (报名摇号: registration during a
//! window that closes at or before the round's start, then a draw; see [`crate::lottery`]).
//! A lottery round's stock is released like a rush round's, and its winners are issued
//! through the same claim script; what they do not take stays live for the next round.

use crate::category::Category;
use crate::identity::Identity;
use crate::ids::{CampaignId, ProgramId};
use crate::lottery::Commitment;
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
///
/// On the wire a round is flat: `round_no`, `starts_at`, `quantity`, `mode` (`rush`, the
/// default, or `lottery`) and, for a lottery, `registration_opens_at`,
/// `registration_closes_at` and (in what the server answers) `commitment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RoundWire", into = "RoundWire")]
pub struct Round {
    /// 1, 2, 3 … in order of start time.
    pub round_no: u32,
    /// When the round opens (a lottery round: the earliest moment of its draw).
    pub starts_at: DateTime<Utc>,
    /// How many vouchers it releases (recycled stock comes on top).
    pub quantity: u32,
    /// Rush (first come, first served) or lottery (registration, then a draw).
    pub mode: RoundMode,
}

/// How a round hands out its vouchers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundMode {
    /// 抢券: residents claim from `starts_at`, first come first served.
    Rush,
    /// 报名摇号: residents register during a window; after it, a verifiable draw picks the
    /// winners, who are issued their vouchers (see [`crate::lottery`]). Rush claims are
    /// refused while this round is the current one.
    Lottery(LotteryWindow),
}

/// A lottery round's registration window and its published commitment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LotteryWindow {
    /// Registrations accepted from this instant…
    pub registration_opens_at: DateTime<Utc>,
    /// …until this one (excluded). At or before the round's `starts_at`.
    pub registration_closes_at: DateTime<Utc>,
    /// SHA-256 of the round's secret seed, made by the server when it records the round
    /// (`None` in a request: a client never supplies it).
    pub commitment: Option<Commitment>,
}

/// The name of a round mode on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoundKind {
    /// [`RoundMode::Rush`].
    #[default]
    Rush,
    /// [`RoundMode::Lottery`].
    Lottery,
}

/// A round mode whose fields do not fit together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRoundMode {
    /// A lottery without both ends of its window.
    #[error("a lottery round needs registration_opens_at and registration_closes_at")]
    MissingWindow,
    /// Window fields on a rush round.
    #[error("registration_opens_at, registration_closes_at and commitment belong to lottery rounds only")]
    WindowOnRush,
    /// The window is empty or ends after the round starts.
    #[error("the registration window must open before it closes and close at or before the round's starts_at")]
    WindowOrder,
}

impl RoundMode {
    /// Builds a mode from its wire fields, checking the window against the round's start
    /// (`opens < closes <= starts_at`).
    ///
    /// # Errors
    /// [`InvalidRoundMode`].
    pub fn from_parts(
        kind: RoundKind,
        registration_opens_at: Option<DateTime<Utc>>,
        registration_closes_at: Option<DateTime<Utc>>,
        commitment: Option<Commitment>,
        starts_at: DateTime<Utc>,
    ) -> Result<RoundMode, InvalidRoundMode> {
        match (kind, registration_opens_at, registration_closes_at) {
            (RoundKind::Rush, None, None) if commitment.is_none() => Ok(RoundMode::Rush),
            (RoundKind::Rush, _, _) => Err(InvalidRoundMode::WindowOnRush),
            (RoundKind::Lottery, Some(opens), Some(closes)) => {
                if opens < closes && closes <= starts_at {
                    Ok(RoundMode::Lottery(LotteryWindow {
                        registration_opens_at: opens,
                        registration_closes_at: closes,
                        commitment,
                    }))
                } else {
                    Err(InvalidRoundMode::WindowOrder)
                }
            }
            (RoundKind::Lottery, _, _) => Err(InvalidRoundMode::MissingWindow),
        }
    }

    /// Its wire name.
    pub fn kind(&self) -> RoundKind {
        match self {
            RoundMode::Rush => RoundKind::Rush,
            RoundMode::Lottery(_) => RoundKind::Lottery,
        }
    }

    /// The lottery window, if a lottery.
    pub fn lottery(&self) -> Option<&LotteryWindow> {
        match self {
            RoundMode::Rush => None,
            RoundMode::Lottery(w) => Some(w),
        }
    }
}

impl Round {
    /// A rush round.
    pub fn rush(round_no: u32, starts_at: DateTime<Utc>, quantity: u32) -> Round {
        Round {
            round_no,
            starts_at,
            quantity,
            mode: RoundMode::Rush,
        }
    }

    /// Whether this is a lottery round.
    pub fn is_lottery(&self) -> bool {
        matches!(self.mode, RoundMode::Lottery(_))
    }
}

/// The flat wire form of a [`Round`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoundWire {
    #[serde(deserialize_with = "bounds::round_no")]
    round_no: u32,
    starts_at: DateTime<Utc>,
    #[serde(deserialize_with = "bounds::stock")]
    quantity: u32,
    #[serde(default)]
    mode: RoundKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    registration_opens_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    registration_closes_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    commitment: Option<Commitment>,
}

impl TryFrom<RoundWire> for Round {
    type Error = InvalidRoundMode;
    fn try_from(w: RoundWire) -> Result<Round, InvalidRoundMode> {
        let mode = RoundMode::from_parts(
            w.mode,
            w.registration_opens_at,
            w.registration_closes_at,
            w.commitment,
            w.starts_at,
        )?;
        Ok(Round {
            round_no: w.round_no,
            starts_at: w.starts_at,
            quantity: w.quantity,
            mode,
        })
    }
}

impl From<Round> for RoundWire {
    fn from(r: Round) -> RoundWire {
        let window = r.mode.lottery();
        RoundWire {
            round_no: r.round_no,
            starts_at: r.starts_at,
            quantity: r.quantity,
            mode: r.mode.kind(),
            registration_opens_at: window.map(|w| w.registration_opens_at),
            registration_closes_at: window.map(|w| w.registration_closes_at),
            commitment: window.and_then(|w| w.commitment),
        }
    }
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
    /// A lottery round submitted with a commitment: the server makes it.
    #[error("a lottery round's commitment is made by the server; do not send one")]
    Commitment,
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
            // 以旧换新: appliances and kitchen-and-bath at home-furnishing merchants, phones,
            // digital products and e-bikes at general ones.
            Rule::ItemPercent(_) => {
                matches!(self.category, Category::HomeFurnishing | Category::General)
            }
            Rule::AnnualCard { .. } => self.category == Category::CultureTourism,
        };
        if !fits {
            return Err(InvalidCampaign::RuleCategory {
                rule: self.rule.kind(),
                category: self.category,
            });
        }
        if matches!(self.rule, Rule::AnnualCard { .. }) && self.per_person_limit != 1 {
            return Err(crate::rule::InvalidRule::AnnualCardLimit.into());
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
            if round.mode.lottery().is_some_and(|w| w.commitment.is_some()) {
                return Err(InvalidCampaign::Commitment);
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
        if round.mode.lottery().is_some_and(|w| w.commitment.is_some()) {
            return Err(InvalidCampaign::Commitment);
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

    /// The round numbered `round_no`, if any.
    pub fn round(&self, round_no: u32) -> Option<&Round> {
        self.spec.rounds.iter().find(|r| r.round_no == round_no)
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
