//! Scenic-spot first-entry ticket subsidies (门票补贴, seed 001 item 13): 对收费A级旅游景区
//! 进行门票补贴，落实首道门票八折以上优惠省级补贴政策，市级财政在省级补贴的基础上按门票实际
//! 销售价格的20%给予补贴，鼓励县级财政配套补贴资金. The arithmetic is
//! `voucher_core::ticket` (per ticket, floored to the fen, then × quantity); the handlers in
//! [`crate::routes::tickets`] are thin.
//!
//! **Scheme.** An administrator of the owner place (a city officer for the city and its
//! counties, the province for all) creates a scheme naming two programs: the province's
//! part is paid by a program whose `province_ratio_bp` is 10000 (the province pays it all,
//! within its pool and the city's allocation), the city's part by one whose ratio is 0 (the
//! city pays it all; `county_cofund_bp` lets counties co-fund). Both programs must be of the
//! owner's province; otherwise `TICKET_PROGRAM_MISMATCH`. Not changed once created.
//!
//! **Sale.** The scenic spot's signed terminal reports `POST /v1/ticket-sales` with an
//! `Idempotency-Key`. Order of checks: the key and the body (`INVALID_FIELD`: a list price,
//! a sale price not above it, a quantity, a `sale_ref`) → in ONE transaction: the key is
//! taken (a replay answers the first answer; another body `IDEMPOTENCY_KEY_REUSED`; a
//! concurrent duplicate `IN_FLIGHT`) → the scheme exists (`TICKET_SCHEME_NOT_FOUND`) → a
//! sale the merchant already reported with this `sale_ref` is answered again when it is
//! the same sale, else `TICKET_SALE_REF_USED` → the merchant is one of its scenic spots:
//! in the owner place, of category `culture_tourism`, approved for each program that pays
//! (`TICKET_MERCHANT_NOT_IN_SCHEME`) → the sale time lies in the window
//! (`TICKET_SCHEME_CLOSED`, with the dates) → the sale is recorded with its per-ticket
//! amounts, its `subsidy_lines` rows and the stored answer; commit; answer.
//!
//! The sale time is the service's clock when the report arrives (the report is the sale,
//! as a checkout is), so a terminal cannot date a sale into the window. A sale outside the
//! window is REFUSED and writes nothing, rather than recorded as not eligible: the scheme
//! does not exist for it (2023年6月前), and a refusal with the dates tells the spot at once
//! that its terminal reports under a closed scheme. A sale above the ratio (e.g. 80.01 of
//! 100.00) is inside the scheme and IS recorded, not eligible, with zero amounts and no
//! subsidy line: the sale is the spot's, the subsidy is not.
//!
//! **Subsidy lines.** An eligible sale writes, in its transaction, one `subsidy_lines` row
//! per part that is not zero, paid to the scenic spot (`payee_kind` `merchant`):
//! `ticket_province` (the province's program, source `ticket:<sale>:province`) and
//! `ticket_city` (the city's program, source `ticket:<sale>:city`), counted at the sale
//! time, in the settlement city of the owner place. The city line carries the spot's
//! county (the scheme's owner when it is a county's, else the merchant's county when it has
//! one), so the settlement's county co-funding (`county_cofund_bp`) applies to it.
//!
//! **Refund.** `POST /v1/ticket-sales/{id}/refunds` with `refund_ref` and `quantity` gives
//! back exactly `quantity ×` the per-ticket amounts, as negative rows with their own
//! sources (`ticket-refund:<refund>:province|city`), counted when the refund happens. The
//! sale's row is locked; more than is left is `TICKET_REFUND_TOO_MANY`. Idempotent on
//! `refund_ref` (the same quantity answers the first refund; another quantity
//! `TICKET_REFUND_REF_USED`).

use crate::checkout::idempotency::IdempotencyKey;
use crate::error::{ApiError, Code};
use crate::state::AppState;
use crate::terminal_auth::Terminal;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;
use voucher_core::place::PlaceLevel;
use voucher_core::ticket::{
    times, InvalidTicketRule, InvalidTicketScheme, NewTicketScheme, PerTicket, ProvinceBasis,
    ProvincePart, TicketRule,
};
use voucher_core::{BasisPoints, Category, Fen, PlaceCode, ProgramId};
use voucher_platform::admin::Admin;
use voucher_store::pg::idempotency::{idempotency_claim, IdempotencyBegin};
use voucher_store::pg::programs;
use voucher_store::pg::tickets::{
    self as store, MerchantSubsidyLine, NewSchemeRecord, RefundRecord, SaleRecord, SchemeRecord,
};
use voucher_store::StoreError;

/// `kind` of the province's subsidy lines.
pub const KIND_PROVINCE: &str = "ticket_province";
/// `kind` of the city's subsidy lines.
pub const KIND_CITY: &str = "ticket_city";
/// Highest list price of one ticket accepted: 100,000 yuan.
pub const MAX_TICKET_PRICE_FEN: i64 = 10_000_000;
/// Most tickets in one reported sale.
pub const MAX_QUANTITY: i64 = 10_000;

// ---------------------------------------------------------------- wire types

/// The province's part of a scheme's rule.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvincePartBody {
    /// What the rate applies to: `discount` (list − sale), `sale_price` or `list_price`.
    pub basis: String,
    /// Rate of the basis, basis points (1–10000).
    pub rate_bp: u32,
    /// Most per ticket, fen, if capped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_ticket_cap_fen: Option<i64>,
}

/// A scheme's per-ticket rule.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketRuleBody {
    /// A sale qualifies when `sale ≤ list × max_sale_ratio_bp / 10000` (8000: 八折 or less).
    pub max_sale_ratio_bp: u32,
    /// The province's part, if the scheme pays one (the seed leaves the provincial policy
    /// to the province: configure it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub province: Option<ProvincePartBody>,
    /// The city's part: rate of the actual sale price (2000 = 20%).
    pub city_rate_bp: u32,
    /// Most the city pays per ticket, fen, if capped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city_per_ticket_cap_fen: Option<i64>,
}

/// `POST /v1/admin/ticket-schemes` body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "晋城A级景区首道门票补贴", "owner_place": 140500,
    "province_program_id": 1, "city_program_id": 2,
    "rule": {"max_sale_ratio_bp": 8000, "city_rate_bp": 2000,
             "province": {"basis": "discount", "rate_bp": 5000}},
    "starts_at": "2022-12-15T00:00:00+08:00", "ends_at": "2023-06-01T00:00:00+08:00"
}))]
pub struct NewTicketSchemeBody {
    /// Human name, 1–200 characters.
    pub name: String,
    /// The city or county whose scheme it is, e.g. 140500.
    #[schema(value_type = u32)]
    pub owner_place: PlaceCode,
    /// The program that pays the province's part (`province_ratio_bp` 10000).
    pub province_program_id: i64,
    /// The program that pays the city's part (`province_ratio_bp` 0; `county_cofund_bp` for
    /// county co-funding).
    pub city_program_id: i64,
    /// How sales are subsidised.
    pub rule: TicketRuleBody,
    /// First sale instant that counts (RFC 3339).
    #[schema(value_type = String, format = DateTime)]
    pub starts_at: DateTime<Utc>,
    /// Sales from this instant on are refused (RFC 3339), e.g. 2023-06-01 (2023年6月前).
    #[schema(value_type = String, format = DateTime)]
    pub ends_at: DateTime<Utc>,
}

/// A scheme.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TicketSchemeView {
    /// Scheme id (send it with each sale).
    pub id: i64,
    /// Human name.
    pub name: String,
    /// The city or county whose scheme it is.
    pub owner_place: u32,
    /// The program that pays the province's part.
    pub province_program_id: i64,
    /// The program that pays the city's part.
    pub city_program_id: i64,
    /// The per-ticket rule.
    pub rule: TicketRuleBody,
    /// First sale instant that counts.
    #[schema(value_type = String, format = DateTime)]
    pub starts_at: DateTime<Utc>,
    /// Sales from this instant on are refused.
    #[schema(value_type = String, format = DateTime)]
    pub ends_at: DateTime<Utc>,
    /// Who created it.
    pub created_by: String,
    /// When.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
}

/// `POST /v1/ticket-sales` body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "scheme_id": 1, "sale_ref": "HCXF-20230115-0001",
    "list_price_fen": 10000, "sale_price_fen": 8000, "quantity": 3
}))]
pub struct TicketSaleRequest {
    /// The scheme the spot sells under.
    pub scheme_id: i64,
    /// The spot's own reference of the sale, 1–64 characters, unique per merchant.
    pub sale_ref: String,
    /// The list price (挂牌价) of one ticket, fen (> 0).
    pub list_price_fen: i64,
    /// The actual sale price of one ticket, fen (> 0, not above the list price).
    pub sale_price_fen: i64,
    /// Tickets sold (1–10000).
    pub quantity: i64,
}

/// The province's and the city's parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PartsView {
    /// The province's part, fen.
    pub province_fen: i64,
    /// The city's part, fen.
    pub city_fen: i64,
}

/// A recorded ticket sale.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TicketSaleView {
    /// Always `recorded` (a refused sale is an error and writes nothing).
    pub outcome: String,
    /// Sale id (refund with it).
    pub sale_id: Uuid,
    /// The scheme.
    pub scheme_id: i64,
    /// The spot's reference.
    pub sale_ref: String,
    /// List price of one ticket, fen.
    pub list_price_fen: i64,
    /// Sale price of one ticket, fen.
    pub sale_price_fen: i64,
    /// Tickets sold.
    pub quantity: i64,
    /// Whether the sale qualifies for the subsidy.
    pub eligible: bool,
    /// Why not, when not eligible: `SALE_ABOVE_MAX_RATIO`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The highest sale price of one ticket that qualifies at this list price, fen.
    pub max_eligible_sale_price_fen: i64,
    /// What one ticket gets.
    pub per_ticket: PartsView,
    /// What the sale gets: quantity × per ticket.
    pub total: PartsView,
    /// Tickets refunded so far (0 in the first answer).
    pub refunded_quantity: i64,
    /// When the sale counts (the service's clock at the report).
    #[schema(value_type = String, format = DateTime)]
    pub sold_at: DateTime<Utc>,
}

/// `POST /v1/ticket-sales/{id}/refunds` body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"refund_ref": "HCXF-20230115-0001-R1", "quantity": 1}))]
pub struct TicketRefundRequest {
    /// The spot's reference of this refund, 1–64 characters (the idempotency key).
    pub refund_ref: String,
    /// Tickets refunded (> 0, at most what is left).
    pub quantity: i64,
}

/// A refund.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TicketRefundView {
    /// Refund id.
    pub refund_id: Uuid,
    /// The sale.
    pub sale_id: Uuid,
    /// The spot's reference.
    pub refund_ref: String,
    /// Tickets refunded by this refund.
    pub quantity: i64,
    /// What this refund gives back: quantity × the sale's per-ticket amounts.
    pub given_back: PartsView,
    /// When it counts.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
}

impl From<&RefundRecord> for TicketRefundView {
    fn from(r: &RefundRecord) -> TicketRefundView {
        TicketRefundView {
            refund_id: r.id,
            sale_id: r.sale_id,
            refund_ref: r.refund_ref.clone(),
            quantity: i64::from(r.quantity),
            given_back: PartsView {
                province_fen: r.province_fen,
                city_fen: r.city_fen,
            },
            created_at: r.created_at,
        }
    }
}

// ---------------------------------------------------------------- rule <-> record

fn basis_name(b: ProvinceBasis) -> &'static str {
    match b {
        ProvinceBasis::Discount => "discount",
        ProvinceBasis::SalePrice => "sale_price",
        ProvinceBasis::ListPrice => "list_price",
    }
}

fn basis_of(name: &str) -> Option<ProvinceBasis> {
    match name {
        "discount" => Some(ProvinceBasis::Discount),
        "sale_price" => Some(ProvinceBasis::SalePrice),
        "list_price" => Some(ProvinceBasis::ListPrice),
        _ => None,
    }
}

fn bp(field: &'static str, v: u32) -> Result<BasisPoints, ApiError> {
    BasisPoints::try_from(v).map_err(|e| ApiError::invalid_field(field, e))
}

fn cap(field: &'static str, v: Option<i64>) -> Result<Option<Fen>, ApiError> {
    v.map(|v| Fen::try_from(v).map_err(|e| ApiError::invalid_field(field, e)))
        .transpose()
}

/// The body's rule in the domain's terms.
fn rule_of(body: &TicketRuleBody) -> Result<TicketRule, ApiError> {
    let province = body
        .province
        .as_ref()
        .map(|p| {
            Ok::<_, ApiError>(ProvincePart {
                basis: basis_of(&p.basis).ok_or_else(|| {
                    ApiError::invalid_field(
                        "rule.province.basis",
                        "must be discount, sale_price or list_price",
                    )
                })?,
                rate_bp: bp("rule.province.rate_bp", p.rate_bp)?,
                per_ticket_cap: cap("rule.province.per_ticket_cap_fen", p.per_ticket_cap_fen)?,
            })
        })
        .transpose()?;
    Ok(TicketRule {
        max_sale_ratio_bp: bp("rule.max_sale_ratio_bp", body.max_sale_ratio_bp)?,
        province,
        city_rate_bp: bp("rule.city_rate_bp", body.city_rate_bp)?,
        city_per_ticket_cap: cap("rule.city_per_ticket_cap_fen", body.city_per_ticket_cap_fen)?,
    })
}

fn rule_body(rule: &TicketRule) -> TicketRuleBody {
    TicketRuleBody {
        max_sale_ratio_bp: u32::from(rule.max_sale_ratio_bp),
        province: rule.province.map(|p| ProvincePartBody {
            basis: basis_name(p.basis).to_owned(),
            rate_bp: u32::from(p.rate_bp),
            per_ticket_cap_fen: p.per_ticket_cap.map(Fen::as_i64),
        }),
        city_rate_bp: u32::from(rule.city_rate_bp),
        city_per_ticket_cap_fen: rule.city_per_ticket_cap.map(Fen::as_i64),
    }
}

fn corrupt(what: impl std::fmt::Display) -> ApiError {
    ApiError::internal(StoreError::Corrupt(format!("ticket scheme: {what}")))
}

/// A stored scheme's rule (the database checked it when it was written).
fn stored_rule(s: &SchemeRecord) -> Result<TicketRule, ApiError> {
    let bp = |v: i32| {
        u32::try_from(v)
            .ok()
            .and_then(|v| BasisPoints::try_from(v).ok())
            .ok_or_else(|| corrupt(format!("basis points {v}")))
    };
    let fen = |v: Option<i64>| v.map(|v| Fen::try_from(v).map_err(corrupt)).transpose();
    let province = match (&s.province_basis, s.province_rate_bp) {
        (Some(basis), Some(rate)) => Some(ProvincePart {
            basis: basis_of(basis).ok_or_else(|| corrupt(format!("basis {basis:?}")))?,
            rate_bp: bp(rate)?,
            per_ticket_cap: fen(s.province_per_ticket_cap_fen)?,
        }),
        _ => None,
    };
    Ok(TicketRule {
        max_sale_ratio_bp: bp(s.max_sale_ratio_bp)?,
        province,
        city_rate_bp: bp(s.city_rate_bp)?,
        city_per_ticket_cap: fen(s.city_per_ticket_cap_fen)?,
    })
}

fn place_of(code: i32) -> Result<PlaceCode, ApiError> {
    u32::try_from(code)
        .ok()
        .and_then(|c| PlaceCode::try_from(c).ok())
        .ok_or_else(|| corrupt(format!("place {code}")))
}

fn db_place(place: PlaceCode) -> Result<i32, ApiError> {
    i32::try_from(place.get()).map_err(ApiError::internal)
}

fn scheme_view(s: &SchemeRecord) -> Result<TicketSchemeView, ApiError> {
    Ok(TicketSchemeView {
        id: s.id,
        name: s.name.clone(),
        owner_place: place_of(s.owner_place)?.get(),
        province_program_id: s.province_program_id,
        city_program_id: s.city_program_id,
        rule: rule_body(&stored_rule(s)?),
        starts_at: s.starts_at,
        ends_at: s.ends_at,
        created_by: s.created_by.clone(),
        created_at: s.created_at,
    })
}

// ---------------------------------------------------------------- schemes

fn scheme_invalid(e: &InvalidTicketScheme) -> ApiError {
    let field = match e {
        InvalidTicketScheme::Rule(r) => match r {
            InvalidTicketRule::ZeroRatio => "rule.max_sale_ratio_bp",
            InvalidTicketRule::NothingPaid => "rule.city_rate_bp",
            InvalidTicketRule::ZeroProvinceRate => "rule.province.rate_bp",
            InvalidTicketRule::ZeroCap => "rule",
        },
        other => other.field(),
    };
    ApiError::invalid_field(field, e)
}

fn mismatch(message: String, program: i64) -> ApiError {
    ApiError::new(Code::TicketProgramMismatch)
        .with_message(message)
        .with_details(json!({ "program_id": program }))
}

/// Creates a scheme of a place the administrator manages.
///
/// # Errors
/// `INVALID_FIELD`, `FORBIDDEN_PLACE`, `PROGRAM_NOT_FOUND`, `TICKET_PROGRAM_MISMATCH`.
#[tracing::instrument(
    name = "redemption.tickets.create_scheme",
    skip_all,
    err(level = "debug")
)]
pub async fn create_scheme(
    state: &AppState,
    who: &Admin,
    body: NewTicketSchemeBody,
) -> Result<TicketSchemeView, ApiError> {
    let spec = NewTicketScheme {
        name: body.name.trim().to_owned(),
        owner_place: body.owner_place,
        province_program_id: ProgramId(body.province_program_id),
        city_program_id: ProgramId(body.city_program_id),
        rule: rule_of(&body.rule)?,
        starts_at: body.starts_at,
        ends_at: body.ends_at,
    };
    spec.validate().map_err(|e| scheme_invalid(&e))?;
    who.require_place(spec.owner_place)?;
    let province = spec.owner_place.province();
    for (program_id, part, ratio) in [
        (
            spec.province_program_id,
            "province",
            BasisPoints::FULL.get(),
        ),
        (spec.city_program_id, "city", 0),
    ] {
        let program = programs::get(&state.pg, program_id).await?.ok_or_else(|| {
            ApiError::new(Code::ProgramNotFound)
                .with_message(format!("program {} does not exist", program_id.0))
        })?;
        if program.spec.funder_place.province() != province {
            return Err(mismatch(
                format!(
                    "program {} is funded by {}, not by the province of {}",
                    program_id.0, program.spec.funder_place, spec.owner_place
                ),
                program_id.0,
            ));
        }
        if program.spec.province_ratio_bp.get() != ratio {
            return Err(mismatch(
                format!(
                    "the {part}'s part needs a program whose province_ratio_bp is {ratio}; program {} has {}",
                    program_id.0,
                    program.spec.province_ratio_bp.get()
                ),
                program_id.0,
            ));
        }
    }
    let rule = spec.rule;
    let record = NewSchemeRecord {
        name: spec.name,
        owner_place: db_place(spec.owner_place)?,
        province_program_id: spec.province_program_id.0,
        city_program_id: spec.city_program_id.0,
        max_sale_ratio_bp: i32::from(rule.max_sale_ratio_bp.get()),
        province_basis: rule.province.map(|p| basis_name(p.basis).to_owned()),
        province_rate_bp: rule.province.map(|p| i32::from(p.rate_bp.get())),
        province_per_ticket_cap_fen: rule
            .province
            .and_then(|p| p.per_ticket_cap)
            .map(Fen::as_i64),
        city_rate_bp: i32::from(rule.city_rate_bp.get()),
        city_per_ticket_cap_fen: rule.city_per_ticket_cap.map(Fen::as_i64),
        starts_at: spec.starts_at,
        ends_at: spec.ends_at,
        created_by: who.name.clone(),
        created_at: state.clock.now(),
    };
    let stored = store::create_scheme(&state.pg, &record).await?;
    tracing::info!(scheme = stored.id, owner = %spec.owner_place, by = %who.name, "ticket scheme created");
    scheme_view(&stored)
}

/// The schemes of the places the administrator manages.
///
/// # Errors
/// Store failures.
pub async fn list_schemes(
    state: &AppState,
    who: &Admin,
) -> Result<Vec<TicketSchemeView>, ApiError> {
    let mut out = Vec::new();
    for s in store::list_schemes(&state.pg).await? {
        if who.can_manage(place_of(s.owner_place)?) {
            out.push(scheme_view(&s)?);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------- sales

/// A checked sale report.
struct Sale {
    list: Fen,
    sale: Fen,
    quantity: u32,
}

fn check_ref(field: &'static str, r: &str) -> Result<(), ApiError> {
    let len = r.chars().count();
    if len == 0 || len > 64 || r.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            field,
            "must be 1-64 characters without control characters",
        ));
    }
    Ok(())
}

fn validate_sale(req: &TicketSaleRequest) -> Result<Sale, ApiError> {
    check_ref("sale_ref", &req.sale_ref)?;
    if req.list_price_fen <= 0 || req.list_price_fen > MAX_TICKET_PRICE_FEN {
        return Err(ApiError::invalid_field(
            "list_price_fen",
            format!("must be 1..={MAX_TICKET_PRICE_FEN} fen"),
        ));
    }
    if req.sale_price_fen <= 0 || req.sale_price_fen > req.list_price_fen {
        return Err(ApiError::invalid_field(
            "sale_price_fen",
            "must be at least 1 fen and not above list_price_fen",
        ));
    }
    let quantity = u32::try_from(req.quantity)
        .ok()
        .filter(|q| (1..=MAX_QUANTITY).contains(&i64::from(*q)))
        .ok_or_else(|| {
            ApiError::invalid_field("quantity", format!("must be 1..={MAX_QUANTITY}"))
        })?;
    let fen = |field: &'static str, v: i64| {
        Fen::try_from(v).map_err(|e| ApiError::invalid_field(field, e))
    };
    Ok(Sale {
        list: fen("list_price_fen", req.list_price_fen)?,
        sale: fen("sale_price_fen", req.sale_price_fen)?,
        quantity,
    })
}

/// `⌊list × ratio / 10000⌋`: the highest sale price that qualifies.
fn max_eligible(rule: &TicketRule, list: Fen) -> Fen {
    list.mul_bp_floor(rule.max_sale_ratio_bp)
}

fn total(per_ticket: i64, quantity: i64) -> Result<i64, ApiError> {
    per_ticket
        .checked_mul(quantity)
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("ticket amount overflow")))
}

fn sale_view(s: &SaleRecord, rule: &TicketRule) -> Result<TicketSaleView, ApiError> {
    let quantity = i64::from(s.quantity);
    let list = Fen::try_from(s.list_price_fen).map_err(corrupt)?;
    Ok(TicketSaleView {
        outcome: "recorded".to_owned(),
        sale_id: s.id,
        scheme_id: s.scheme_id,
        sale_ref: s.sale_ref.clone(),
        list_price_fen: s.list_price_fen,
        sale_price_fen: s.sale_price_fen,
        quantity,
        eligible: s.eligible,
        reason: (!s.eligible).then(|| "SALE_ABOVE_MAX_RATIO".to_owned()),
        max_eligible_sale_price_fen: max_eligible(rule, list).as_i64(),
        per_ticket: PartsView {
            province_fen: s.province_per_ticket_fen,
            city_fen: s.city_per_ticket_fen,
        },
        total: PartsView {
            province_fen: total(s.province_per_ticket_fen, quantity)?,
            city_fen: total(s.city_per_ticket_fen, quantity)?,
        },
        refunded_quantity: i64::from(s.refunded_quantity),
        sold_at: s.sold_at,
    })
}

/// Whether a stored sale is the one `req` reports.
fn same_sale(s: &SaleRecord, req: &TicketSaleRequest) -> bool {
    s.scheme_id == req.scheme_id
        && s.list_price_fen == req.list_price_fen
        && s.sale_price_fen == req.sale_price_fen
        && i64::from(s.quantity) == req.quantity
}

/// Where a scheme's lines settle: the settlement city of the owner place, and the county
/// that co-funds the city's part (the spot's county: the owner when it is a county, which
/// then is the spot's place too).
fn line_places(scheme: &SchemeRecord, terminal: &Terminal) -> Result<(i32, Option<i32>), ApiError> {
    let owner = place_of(scheme.owner_place)?;
    let county = match (owner.level(), terminal.place.level()) {
        (PlaceLevel::County, _) => Some(owner),
        (_, PlaceLevel::County) => Some(terminal.place),
        _ => None,
    };
    Ok((db_place(owner.city())?, county.map(db_place).transpose()?))
}

/// The lines of a sale (`sign` 1) or of a refund (`sign` −1): one per part that is not
/// zero.
#[allow(clippy::too_many_arguments)]
fn lines(
    scheme: &SchemeRecord,
    terminal: &Terminal,
    source: &str,
    province_fen: i64,
    city_fen: i64,
    sign: i64,
    counted_at: DateTime<Utc>,
    detail: &serde_json::Value,
) -> Result<Vec<MerchantSubsidyLine>, ApiError> {
    let (city, county) = line_places(scheme, terminal)?;
    let mut out = Vec::new();
    for (part, kind, program_id, amount, county) in [
        (
            "province",
            KIND_PROVINCE,
            scheme.province_program_id,
            province_fen,
            None,
        ),
        ("city", KIND_CITY, scheme.city_program_id, city_fen, county),
    ] {
        if amount == 0 {
            continue;
        }
        out.push(MerchantSubsidyLine {
            id: Uuid::now_v7(),
            source: format!("{source}:{part}"),
            kind: kind.to_owned(),
            program_id,
            city,
            county,
            merchant_id: terminal.merchant_id.as_str().to_owned(),
            amount_fen: sign * amount,
            counted_at,
            detail: detail.clone(),
        });
    }
    Ok(out)
}

/// Whether the terminal's merchant is a scenic spot of the scheme.
async fn require_spot(
    con: &mut sqlx::PgConnection,
    scheme: &SchemeRecord,
    rule: &TicketRule,
    terminal: &Terminal,
) -> Result<(), ApiError> {
    let refuse = |why: String| {
        ApiError::new(Code::TicketMerchantNotInScheme)
            .with_message(why)
            .with_details(json!({ "scheme_id": scheme.id }))
    };
    let owner = place_of(scheme.owner_place)?;
    if !owner.covers(terminal.place) {
        return Err(refuse(format!(
            "merchant {} lies in {}, outside the scheme's place {owner}",
            terminal.merchant_id, terminal.place
        )));
    }
    if terminal.category != Category::CultureTourism {
        return Err(refuse(format!(
            "merchant {} is a {} merchant; ticket schemes are for culture_tourism merchants (scenic spots)",
            terminal.merchant_id,
            terminal.category.as_str()
        )));
    }
    let mut paying = Vec::new();
    if rule.province.is_some() {
        paying.push(scheme.province_program_id);
    }
    if rule.city_rate_bp.get() > 0 {
        paying.push(scheme.city_program_id);
    }
    let approved = store::approved_programs(con, terminal.merchant_id.as_str(), &paying).await?;
    if let Some(missing) = paying.iter().find(|p| !approved.contains(p)) {
        return Err(refuse(format!(
            "merchant {} is not approved for program {missing} of the scheme",
            terminal.merchant_id
        )));
    }
    Ok(())
}

/// Records a ticket sale reported by a scenic spot's terminal (see the module
/// documentation for the order of checks). Answers `(status, body)`: a replay answers the
/// stored first answer.
///
/// # Errors
/// `INVALID_FIELD`, `IDEMPOTENCY_KEY_REUSED`, `IN_FLIGHT`, `TICKET_SALE_REF_USED`,
/// `TICKET_SCHEME_NOT_FOUND`, `TICKET_MERCHANT_NOT_IN_SCHEME`, `TICKET_SCHEME_CLOSED`.
#[tracing::instrument(name = "redemption.tickets.sale", skip_all, fields(merchant = %terminal.merchant_id), err(level = "debug"))]
pub async fn record_sale(
    state: &AppState,
    terminal: &Terminal,
    key: &IdempotencyKey,
    hash: &str,
    req: &TicketSaleRequest,
) -> Result<(u16, serde_json::Value), ApiError> {
    let checked = validate_sale(req)?;
    let merchant = terminal.merchant_id.as_str();
    let mut tx = state.pg.begin().await.map_err(StoreError::from)?;
    let claim = idempotency_claim(
        &mut tx,
        &terminal.merchant_id,
        key.as_str(),
        hash,
        None,
        state.settings.idempotency.stale_in_flight_secs,
    )
    .await?;
    match claim.begin {
        IdempotencyBegin::Started => {}
        IdempotencyBegin::Done(status, body) => {
            return Ok((u16::try_from(status).unwrap_or(200), body))
        }
        IdempotencyBegin::Mismatch => return Err(ApiError::new(Code::IdempotencyKeyReused)),
        IdempotencyBegin::InFlight => return Err(ApiError::new(Code::InFlight)),
    }
    let scheme = store::get_scheme(&mut *tx, req.scheme_id)
        .await?
        .ok_or_else(|| {
            ApiError::new(Code::TicketSchemeNotFound)
                .with_message(format!("ticket scheme {} does not exist", req.scheme_id))
        })?;
    let rule = stored_rule(&scheme)?;
    // The same sale reported again (another key, or after a lost answer): its record.
    if let Some(existing) = store::sale_by_ref(&mut tx, merchant, &req.sale_ref).await? {
        return answer_existing(tx, terminal, key, hash, &existing, req).await;
    }
    require_spot(&mut tx, &scheme, &rule, terminal).await?;
    let now = state.clock.now();
    if now < scheme.starts_at || now >= scheme.ends_at {
        return Err(ApiError::new(Code::TicketSchemeClosed)
            .with_message(format!(
                "ticket scheme {} counts sales from {} until (not including) {}",
                scheme.id,
                scheme.starts_at.to_rfc3339(),
                scheme.ends_at.to_rfc3339()
            ))
            .with_details(json!({
                "scheme_id": scheme.id,
                "starts_at": scheme.starts_at,
                "ends_at": scheme.ends_at,
                "now": now,
            })));
    }
    let per: PerTicket = rule.per_ticket(checked.list, checked.sale);
    // The totals must fit (they always do within the input limits; checked, not assumed).
    for part in [per.province, per.city] {
        times(part, checked.quantity)
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("ticket amount overflow")))?;
    }
    let record = SaleRecord {
        id: Uuid::now_v7(),
        scheme_id: scheme.id,
        merchant_id: merchant.to_owned(),
        terminal_id: terminal.terminal_id.0,
        sale_ref: req.sale_ref.clone(),
        list_price_fen: checked.list.as_i64(),
        sale_price_fen: checked.sale.as_i64(),
        quantity: i32::try_from(checked.quantity).map_err(ApiError::internal)?,
        eligible: per.eligible,
        province_per_ticket_fen: per.province.as_i64(),
        city_per_ticket_fen: per.city.as_i64(),
        refunded_quantity: 0,
        sold_at: now,
    };
    if !store::insert_sale_in_tx(&mut tx, &record).await? {
        // A concurrent report of the same sale_ref committed first.
        let existing = store::sale_by_ref(&mut tx, merchant, &req.sale_ref)
            .await?
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("ticket sale vanished")))?;
        return answer_existing(tx, terminal, key, hash, &existing, req).await;
    }
    let view = sale_view(&record, &rule)?;
    if record.eligible {
        let detail = json!({
            "scheme_id": scheme.id,
            "sale_id": record.id,
            "sale_ref": record.sale_ref,
            "list_price_fen": record.list_price_fen,
            "sale_price_fen": record.sale_price_fen,
            "quantity": record.quantity,
            "per_ticket": view.per_ticket,
        });
        let rows = lines(
            &scheme,
            terminal,
            &format!("ticket:{}", record.id),
            view.total.province_fen,
            view.total.city_fen,
            1,
            now,
            &detail,
        )?;
        store::insert_lines_in_tx(&mut tx, &rows).await?;
    }
    let body = serde_json::to_value(&view).map_err(ApiError::internal)?;
    store::store_response_in_tx(&mut tx, merchant, key.as_str(), hash, 200, &body).await?;
    tx.commit().await.map_err(StoreError::from)?;
    tracing::info!(
        sale = %record.id,
        scheme = scheme.id,
        eligible = record.eligible,
        quantity = record.quantity,
        "ticket sale recorded"
    );
    Ok((200, body))
}

/// Answers a sale the merchant already reported with this `sale_ref`: the record when it
/// is the same sale (stored under this key too), `TICKET_SALE_REF_USED` otherwise.
async fn answer_existing(
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    terminal: &Terminal,
    key: &IdempotencyKey,
    hash: &str,
    existing: &SaleRecord,
    req: &TicketSaleRequest,
) -> Result<(u16, serde_json::Value), ApiError> {
    if !same_sale(existing, req) {
        return Err(ApiError::new(Code::TicketSaleRefUsed)
            .with_message(format!(
                "sale_ref {:?} was already used for another sale (sale {})",
                req.sale_ref, existing.id
            ))
            .with_details(json!({ "sale_id": existing.id })));
    }
    let scheme = store::get_scheme(&mut *tx, existing.scheme_id)
        .await?
        .ok_or_else(|| corrupt(format!("scheme {} of a sale", existing.scheme_id)))?;
    let view = sale_view(existing, &stored_rule(&scheme)?)?;
    let body = serde_json::to_value(&view).map_err(ApiError::internal)?;
    store::store_response_in_tx(
        &mut tx,
        terminal.merchant_id.as_str(),
        key.as_str(),
        hash,
        200,
        &body,
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok((200, body))
}

// ---------------------------------------------------------------- refunds

/// Refunds some tickets of a sale: gives back exactly `quantity ×` its per-ticket amounts
/// (see the module documentation).
///
/// # Errors
/// `INVALID_FIELD`, `TICKET_SALE_NOT_FOUND`, `TICKET_REFUND_REF_USED`,
/// `TICKET_REFUND_TOO_MANY`.
#[tracing::instrument(name = "redemption.tickets.refund", skip_all, fields(merchant = %terminal.merchant_id), err(level = "debug"))]
pub async fn refund(
    state: &AppState,
    terminal: &Terminal,
    sale_id: Uuid,
    req: &TicketRefundRequest,
) -> Result<TicketRefundView, ApiError> {
    check_ref("refund_ref", &req.refund_ref)?;
    let quantity = i32::try_from(req.quantity)
        .ok()
        .filter(|q| (1..=MAX_QUANTITY).contains(&i64::from(*q)))
        .ok_or_else(|| {
            ApiError::invalid_field("quantity", format!("must be 1..={MAX_QUANTITY}"))
        })?;
    let merchant = terminal.merchant_id.as_str();
    let mut tx = state.pg.begin().await.map_err(StoreError::from)?;
    let sale = store::lock_sale_in_tx(&mut tx, merchant, sale_id)
        .await?
        .ok_or_else(|| ApiError::new(Code::TicketSaleNotFound))?;
    if let Some(done) = store::refund_by_ref(&mut tx, sale.id, &req.refund_ref).await? {
        if done.quantity != quantity {
            return Err(ApiError::new(Code::TicketRefundRefUsed)
                .with_message(format!(
                    "refund_ref {:?} refunded {} tickets, not {quantity}",
                    req.refund_ref, done.quantity
                ))
                .with_details(json!({ "refund_id": done.id, "quantity": done.quantity })));
        }
        return Ok(TicketRefundView::from(&done));
    }
    let left = sale.quantity - sale.refunded_quantity;
    if quantity > left {
        return Err(ApiError::new(Code::TicketRefundTooMany)
            .with_message(format!(
                "{left} of the sale's {} tickets are left to refund",
                sale.quantity
            ))
            .with_details(json!({ "left": left, "quantity": sale.quantity })));
    }
    let q = i64::from(quantity);
    let now = state.clock.now();
    let record = RefundRecord {
        id: Uuid::now_v7(),
        sale_id: sale.id,
        refund_ref: req.refund_ref.clone(),
        quantity,
        province_fen: total(sale.province_per_ticket_fen, q)?,
        city_fen: total(sale.city_per_ticket_fen, q)?,
        created_at: now,
    };
    if !store::add_refund_in_tx(&mut tx, &record).await? {
        // The row is locked: the quantity cannot have changed since it was read.
        return Err(ApiError::internal(anyhow::anyhow!(
            "ticket refund refused under the sale's lock"
        )));
    }
    if sale.eligible {
        let scheme = store::get_scheme(&mut *tx, sale.scheme_id)
            .await?
            .ok_or_else(|| corrupt(format!("scheme {} of a sale", sale.scheme_id)))?;
        let detail = json!({
            "scheme_id": scheme.id,
            "sale_id": sale.id,
            "refund_id": record.id,
            "refund_ref": record.refund_ref,
            "quantity": record.quantity,
            "per_ticket": PartsView {
                province_fen: sale.province_per_ticket_fen,
                city_fen: sale.city_per_ticket_fen,
            },
        });
        let rows = lines(
            &scheme,
            terminal,
            &format!("ticket-refund:{}", record.id),
            record.province_fen,
            record.city_fen,
            -1,
            now,
            &detail,
        )?;
        store::insert_lines_in_tx(&mut tx, &rows).await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    tracing::info!(sale = %sale.id, refund = %record.id, quantity, "ticket refund recorded");
    Ok(TicketRefundView::from(&record))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(ratio: u32, city: u32) -> TicketRuleBody {
        TicketRuleBody {
            max_sale_ratio_bp: ratio,
            province: Some(ProvincePartBody {
                basis: "discount".into(),
                rate_bp: 5000,
                per_ticket_cap_fen: Some(1_000),
            }),
            city_rate_bp: city,
            city_per_ticket_cap_fen: None,
        }
    }

    #[test]
    fn a_rule_goes_to_the_domain_and_back_unchanged() {
        let rule = rule_of(&body(8000, 2000)).unwrap();
        let back = rule_body(&rule);
        assert_eq!(rule_of(&back).unwrap(), rule);
        assert_eq!(back.province.unwrap().basis, "discount");
    }

    #[test]
    fn bad_rule_fields_are_named() {
        let e = rule_of(&body(10_001, 2000)).unwrap_err();
        assert_eq!(e.details().unwrap()["field"], "rule.max_sale_ratio_bp");
        let mut b = body(8000, 2000);
        b.province.as_mut().unwrap().basis = "everything".into();
        let e = rule_of(&b).unwrap_err();
        assert_eq!(e.details().unwrap()["field"], "rule.province.basis");
        b = body(8000, 2000);
        b.city_per_ticket_cap_fen = Some(-1);
        let e = rule_of(&b).unwrap_err();
        assert_eq!(
            e.details().unwrap()["field"],
            "rule.city_per_ticket_cap_fen"
        );
    }

    #[test]
    fn a_sale_report_is_checked_field_by_field() {
        let ok = TicketSaleRequest {
            scheme_id: 1,
            sale_ref: "S-1".into(),
            list_price_fen: 10_000,
            sale_price_fen: 8_000,
            quantity: 3,
        };
        assert!(validate_sale(&ok).is_ok());
        for (bad, field) in [
            (
                TicketSaleRequest {
                    sale_ref: String::new(),
                    ..ok.clone()
                },
                "sale_ref",
            ),
            (
                TicketSaleRequest {
                    list_price_fen: 0,
                    ..ok.clone()
                },
                "list_price_fen",
            ),
            (
                TicketSaleRequest {
                    sale_price_fen: 10_001,
                    ..ok.clone()
                },
                "sale_price_fen",
            ),
            (
                TicketSaleRequest {
                    sale_price_fen: 0,
                    ..ok.clone()
                },
                "sale_price_fen",
            ),
            (
                TicketSaleRequest {
                    quantity: 0,
                    ..ok.clone()
                },
                "quantity",
            ),
            (
                TicketSaleRequest {
                    quantity: MAX_QUANTITY + 1,
                    ..ok.clone()
                },
                "quantity",
            ),
        ] {
            let e = validate_sale(&bad).err().unwrap();
            assert_eq!(e.details().unwrap()["field"], field);
        }
    }
}
