//! Documentation-only mirrors of the domain's request and response types, for the OpenAPI
//! document. The domain crate stays free of HTTP concerns, so its types (`NewProgram`,
//! `NewCampaign`…) do not derive `ToSchema`; these describe their JSON form, with the
//! bounds the parser enforces (`voucher_core::campaign::bounds`). A test in
//! [`crate::openapi`] checks that the examples deserialize into the real types, so the two
//! cannot drift apart silently.
#![allow(dead_code)] // the mirror structs exist only to be documented

use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A discount rule, amounts in fen: `{"type":"threshold","min_spend":10000,"off":2000}` (满减),
/// `{"type":"percent","rate_bp":1000,"per_person_cap":200000}` (立减),
/// `{"type":"item_percent","rate_bp":1500,"item_cap":200000,"categories":[{"product_category":
/// "air_conditioner","per_person_items":3}]}` (以旧换新 per item, home_furnishing or general) or
/// `{"type":"annual_card","subsidy":1000}` (旅游惠民年卡, culture_tourism, per_person_limit 1).
#[derive(Serialize, ToSchema)]
#[schema(as = Rule)]
pub struct RuleSchema {
    /// `threshold`, `percent`, `item_percent` or `annual_card`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Threshold: the order amount to reach, fen.
    #[schema(minimum = 0)]
    pub min_spend: Option<i64>,
    /// Threshold: the discount, fen.
    #[schema(minimum = 0)]
    pub off: Option<i64>,
    /// Percent: the rate in basis points (1000 = 10%).
    #[schema(minimum = 1, maximum = 10000)]
    pub rate_bp: Option<u32>,
    /// Percent: the cumulative cap per person, fen (item_percent: optional).
    #[schema(minimum = 0)]
    pub per_person_cap: Option<i64>,
    /// Item percent: most one item gets, fen.
    #[schema(minimum = 0)]
    pub item_cap: Option<i64>,
    /// Item percent: items priced above this get nothing, fen (optional).
    #[schema(minimum = 0)]
    pub max_item_price: Option<i64>,
    /// Item percent: 1–12 product categories, each `{product_category, per_person_items}`
    /// with optional `rate_bp`, `item_cap`, `max_item_price` overriding the rule's.
    #[schema(value_type = Option<Vec<Object>>)]
    pub categories: Option<Vec<serde_json::Value>>,
    /// Annual card: the once-only subsidy, fen.
    #[schema(minimum = 0)]
    pub subsidy: Option<i64>,
}

/// `POST /v1/admin/programs` body (`voucher_core::NewProgram`).
#[derive(Serialize, ToSchema)]
#[schema(as = NewProgram, example = json!({
    "name": "家居惠民 2025", "funder_place": 140000, "province_ratio_bp": 5000,
    "pool": 20000000000i64, "city_allocations": {"140500": 1000000000}, "refund_policy": "restore"
}))]
pub struct NewProgramSchema {
    /// 1–200 characters, not only blanks.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    /// The funding province, e.g. 140000.
    #[schema(minimum = 110000, maximum = 999999)]
    pub funder_place: u32,
    /// The province's share of each city's spending, basis points (5000 = 50%).
    #[schema(minimum = 0, maximum = 10000)]
    pub province_ratio_bp: u32,
    /// The provincial pool, fen.
    #[schema(minimum = 0)]
    pub pool: i64,
    /// Optional caps per city (place code → fen, at most the pool together).
    pub city_allocations: Option<BTreeMap<String, i64>>,
    /// Optional county co-funding share of the city part, basis points.
    #[schema(minimum = 0, maximum = 10000)]
    pub county_cofund_bp: Option<u32>,
    /// `restore` or `forfeit`.
    pub refund_policy: String,
}

/// A program (`voucher_core::Program`): `id` plus every field of [`NewProgramSchema`].
#[derive(Serialize, ToSchema)]
#[schema(as = Program)]
pub struct ProgramSchema {
    /// Program id.
    pub id: i64,
    /// The spec.
    #[serde(flatten)]
    pub spec: NewProgramSchema,
}

/// A release round.
#[derive(Serialize, ToSchema)]
#[schema(as = Round)]
pub struct RoundSchema {
    /// 1, 2, 3 …
    #[schema(minimum = 1, maximum = 10000)]
    pub round_no: u32,
    /// Opening time (RFC 3339).
    pub starts_at: chrono::DateTime<chrono::Utc>,
    /// Vouchers released.
    #[schema(minimum = 1, maximum = 100000000)]
    pub quantity: u32,
    /// `rush` (default) or `lottery` (报名摇号: registration, then a draw from `starts_at`).
    pub mode: Option<String>,
    /// A lottery's registration window opens (required for a lottery).
    pub registration_opens_at: Option<chrono::DateTime<chrono::Utc>>,
    /// A lottery's registration window closes, at or before `starts_at` (required for a lottery).
    pub registration_closes_at: Option<chrono::DateTime<chrono::Utc>>,
    /// A lottery's commitment, hex SHA-256 of its secret seed: made by the server when the
    /// round is recorded (answers only; never send it).
    pub commitment: Option<String>,
}

/// Validity after claiming: `days_after_claim` and/or `ends_at` (the earlier end wins).
#[derive(Serialize, ToSchema)]
#[schema(as = Validity)]
pub struct ValiditySchema {
    /// Days after the claim.
    #[schema(minimum = 1, maximum = 3660)]
    pub days_after_claim: Option<u32>,
    /// Absolute end.
    pub ends_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A place code (省/市/县 administrative division code, six digits): `PlaceCode` in the
/// document.
pub struct PlaceCodeSchema;

impl utoipa::PartialSchema for PlaceCodeSchema {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::Integer)
            .description(Some("A place code (province, city or county), six digits"))
            .minimum(Some(110_000))
            .maximum(Some(999_999))
            .into()
    }
}

impl ToSchema for PlaceCodeSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        "PlaceCode".into()
    }
}

/// Who may claim.
#[derive(Serialize, ToSchema)]
#[schema(as = Eligibility)]
pub struct EligibilitySchema {
    /// Eligible home places (a city covers its counties); empty = the owner place.
    #[schema(value_type = Vec<PlaceCodeSchema>)]
    pub places: Vec<u32>,
    /// Minimum real-name level, 0–3.
    #[schema(minimum = 0, maximum = 3)]
    pub min_real_name_level: u8,
}

/// `POST /v1/admin/campaigns` body (`voucher_core::NewCampaign`).
#[derive(Serialize, ToSchema)]
#[schema(as = NewCampaign, example = json!({
    "program_id": 1, "name": "晋城餐饮券 满100减20", "owner_place": 140500, "category": "catering",
    "rule": {"type": "threshold", "min_spend": 10000, "off": 2000},
    "stock": 10000, "per_person_limit": 1,
    "rounds": [{"round_no": 1, "starts_at": "2025-03-01T02:00:00Z", "quantity": 5000},
               {"round_no": 2, "starts_at": "2025-03-08T02:00:00Z", "quantity": 5000}],
    "validity": {"days_after_claim": 7}, "budget": 20000000,
    "eligibility": {"places": [140500], "min_real_name_level": 2}, "distribution": "claim"
}))]
pub struct NewCampaignSchema {
    /// The funding program.
    pub program_id: i64,
    /// 1–200 characters, not only blanks.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    /// The issuing city or county.
    #[schema(minimum = 110000, maximum = 999999)]
    pub owner_place: u32,
    /// `catering`, `lodging`, `culture_tourism`, `home_furnishing` or `general`.
    pub category: String,
    /// The discount rule.
    pub rule: RuleSchema,
    /// Total vouchers.
    #[schema(minimum = 1, maximum = 100000000)]
    pub stock: u32,
    /// Vouchers per person.
    #[schema(minimum = 1, maximum = 10000)]
    pub per_person_limit: u32,
    /// Release rounds (claim campaigns; none for list campaigns).
    pub rounds: Vec<RoundSchema>,
    /// Validity.
    pub validity: ValiditySchema,
    /// Most the campaign's discounts may grant, fen (more than 0).
    #[schema(minimum = 1)]
    pub budget: i64,
    /// Who may claim.
    pub eligibility: EligibilitySchema,
    /// `claim` (rush rounds) or `list` (bulk issuance).
    pub distribution: String,
}

/// A campaign (`voucher_core::Campaign`): `id`, `status` (`active` | `paused`) and every
/// field of [`NewCampaignSchema`].
#[derive(Serialize, ToSchema)]
#[schema(as = Campaign)]
pub struct CampaignSchema {
    /// Campaign id.
    pub id: i64,
    /// `active` or `paused`.
    pub status: String,
    /// The spec.
    #[serde(flatten)]
    pub spec: NewCampaignSchema,
}
