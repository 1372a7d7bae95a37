//! The demo's checkout chapters: the 2025 trade-in categories as an instant discount per item
//! (002 §(十五)), with a green-product extra on the program (000 item 63; 003 §(十八)) and an
//! advance to the appliance store (预拨资金); and the 旅游惠民年卡 annual card (001 item 13),
//! subsidised once however many times it passes the gate.

use super::{expect, program, yuan, Ctx};
use crate::client::Auth;
use crate::residents::Resident;
use crate::terminal::{self, MerchantSpec, Terminal};
use anyhow::{Context, Result};
use chrono::{Duration, Utc};
use serde_json::{json, Value};
use uuid::Uuid;
use voucher_core::CreditCode;

/// What the chapter leaves for the demo script: the advance to make before settling.
pub struct Advance {
    /// The trade-in program.
    pub program: i64,
    /// The appliance store.
    pub merchant: String,
    /// How much, fen.
    pub amount_fen: i64,
}

/// Creates a claim campaign of Jincheng whose round opens at `opens`.
async fn campaign(
    ctx: &Ctx<'_>,
    program: i64,
    name: &str,
    category: &str,
    rule: Value,
    opens: chrono::DateTime<Utc>,
) -> Result<i64> {
    let c = expect(
        ctx.issuance
            .post_json(
                "/v1/admin/campaigns",
                Auth::ApiKey(ctx.city),
                &json!({"program_id": program, "name": name, "owner_place": 140500,
                        "category": category, "rule": rule, "stock": 1000, "per_person_limit": 1,
                        "rounds": [{"round_no": 1, "starts_at": opens, "quantity": 1000}],
                        "validity": {"days_after_claim": 30}, "budget": 100_000_000,
                        "eligibility": {"places": [140500], "min_real_name_level": 1},
                        "distribution": "claim"}),
            )
            .await?,
        &format!("creating {name}"),
    )?;
    c["id"].as_i64().context("campaign id")
}

/// Registers a merchant of Jincheng with one terminal, approved for `programs`.
async fn merchant(
    ctx: &Ctx<'_>,
    id: &str,
    name: &str,
    category: &str,
    tail: &str,
    programs: &[i64],
) -> Result<Terminal> {
    let head = format!("91140500MA0K{tail}");
    let check = CreditCode::check_char(&head).context("credit code")?;
    terminal::register(
        ctx.redemption,
        ctx.city,
        &MerchantSpec {
            id,
            name,
            credit_code: &format!("{head}{check}"),
            category,
            city: 140_500,
            county: None,
        },
        programs,
    )
    .await
}

/// Claims a voucher of `campaign` for `who` and answers its dynamic code.
async fn claim_code(ctx: &Ctx<'_>, who: &Resident, campaign: i64) -> Result<String> {
    let claimed = expect(
        ctx.issuance
            .claim(&who.token, campaign, Uuid::new_v4())
            .await?,
        "claiming",
    )?;
    let voucher = claimed["voucher_id"].as_str().context("voucher id")?;
    // The phone asks for the code once the voucher is in the record (the persister writes
    // it within moments of the claim).
    let path = format!("/v1/me/vouchers/{voucher}/code");
    let mut reply = ctx.issuance.get(&path, Auth::Bearer(&who.token)).await?;
    for _ in 0..100 {
        if reply.code() != Some("VOUCHER_NOT_FOUND") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        reply = ctx.issuance.get(&path, Auth::Bearer(&who.token)).await?;
    }
    let code = expect(reply, "dynamic code")?;
    code["code"].as_str().map(str::to_owned).context("code")
}

/// Redeems `code` for the order `lines` (their total is the order amount); prints the answer.
async fn sale(
    t: &Terminal,
    code: &str,
    order_ref: &str,
    lines: Value,
    what: &str,
) -> Result<Value> {
    let total: i64 = lines
        .as_array()
        .map(|ls| {
            ls.iter()
                .map(|l| {
                    l["unit_price_fen"].as_i64().unwrap_or(0) * l["quantity"].as_i64().unwrap_or(0)
                })
                .sum()
        })
        .unwrap_or(0);
    let body =
        json!({"code": code, "order_amount_fen": total, "order_ref": order_ref, "lines": lines});
    let r = t.post("/v1/redemptions", &body, Some(order_ref)).await?;
    let b = &r.body;
    if b["outcome"] == "approved" {
        println!(
            "  {what}: order {} yuan, discount {}, extras {}, pays {}",
            yuan(total),
            yuan(b["discount_fen"].as_i64().unwrap_or(0)),
            yuan(b["extras_fen"].as_i64().unwrap_or(0)),
            yuan(b["to_pay_fen"].as_i64().unwrap_or(0)),
        );
    } else {
        println!(
            "  {what}: {} {}",
            b["outcome"].as_str().or(r.code()).unwrap_or("?"),
            b["reason"].as_str().unwrap_or("")
        );
    }
    Ok(r.body)
}

fn item(category: &str, price: i64, quantity: u32) -> Value {
    json!({"product_category": category, "unit_price_fen": price, "quantity": quantity})
}

/// Runs both chapters. Answers the advance the demo script makes before settling.
///
/// # Errors
/// A request the story expects to succeed did not.
pub async fn run(ctx: &Ctx<'_>) -> Result<Advance> {
    println!("== 2025 trade-in (以旧换新, 002 §(十五)): 15% per item at the till, capped, limited per category ==");
    let trade_in = program(
        ctx,
        json!({"name": "2025 家电以旧换新 appliances trade-in", "funder_place": 140000,
               "province_ratio_bp": 5000, "pool": 2_000_000_000_i64, "refund_policy": "restore"}),
        "creating the 2025 trade-in program",
    )
    .await?;
    let rule = json!({"attribute": "green_product", "rate_bp": 500, "cap_per_order": 50_000,
                      "per_person_cap": 100_000, "budget": 1_000_000_000_i64, "active": true});
    expect(
        ctx.redemption_api
            .post_json(
                &format!("/v1/admin/programs/{trade_in}/extra-rules"),
                Auth::ApiKey(ctx.province),
                &rule,
            )
            .await?,
        "setting the green-product extra",
    )?;
    println!(
        "  program #{trade_in}: extra rule on the certified attribute green_product: 5% of the certified lines, at most 500 yuan an order"
    );
    let opens = Utc::now() + Duration::seconds(2);
    let items = campaign(
        ctx,
        trade_in,
        "晋城家电以旧换新 2025",
        "home_furnishing",
        json!({"type": "item_percent", "rate_bp": 1500, "item_cap": 200_000, "categories": [
            {"product_category": "refrigerator", "per_person_items": 1},
            {"product_category": "air_conditioner", "per_person_items": 3},
            {"product_category": "phone", "per_person_items": 1, "item_cap": 50_000, "max_item_price": 600_000}]}),
        opens,
    )
    .await?;
    println!(
        "  campaign #{items}: refrigerator 1, air conditioner 3 per person, 15% capped at 2,000 yuan; phones ≤ 6,000 yuan get at most 500"
    );
    let store = merchant(
        ctx,
        "JC-APPLIANCE-001",
        "晋城苏宁家电 appliances",
        "home_furnishing",
        "8JD01",
        &[trade_in],
    )
    .await?;
    let advance = Advance {
        program: trade_in,
        merchant: store.merchant_id.clone(),
        amount_fen: 200_000,
    };
    let people = ctx.mint("TRADE25-", 2)?;
    tokio::time::sleep(
        (opens - Utc::now()).to_std().unwrap_or_default() + std::time::Duration::from_millis(200),
    )
    .await;
    let (Some(a), Some(b)) = (people.first(), people.get(1)) else {
        return Ok(advance);
    };
    let code_a = claim_code(ctx, a, items).await?;
    let code_b = claim_code(ctx, b, items).await?;
    let stamp = ctx.now.timestamp();
    let green = json!({"product_category": "refrigerator", "unit_price_fen": 4_999_00, "quantity": 1,
                       "certifications": [{"attribute": "green_product", "certificate_no": "CQC-GP-2025-001234"}]});
    sale(
        &store,
        &code_a,
        &format!("APP-{stamp}-1"),
        json!([green, item("air_conditioner", 3_000_00, 1)]),
        &format!(
            "{} buys a green-certified refrigerator and an air conditioner",
            a.person_id
        ),
    )
    .await?;
    sale(
        &store,
        &code_b,
        &format!("APP-{stamp}-2"),
        json!([item("air_conditioner", 2_699_00, 3)]),
        &format!("{} buys three air conditioners", b.person_id),
    )
    .await?;
    sale(
        &store,
        &code_b,
        &format!("APP-{stamp}-3"),
        json!([item("air_conditioner", 2_699_00, 1)]),
        "a fourth air conditioner",
    )
    .await?;
    sale(
        &store,
        &code_b,
        &format!("APP-{stamp}-4"),
        json!([item("phone", 7_999_00, 1)]),
        "a phone above 6,000 yuan",
    )
    .await?;
    sale(
        &store,
        &code_b,
        &format!("APP-{stamp}-5"),
        json!([item("phone", 4_999_00, 1)]),
        "a phone of 4,999 yuan",
    )
    .await?;
    println!(
        "  the province advances {} yuan to {} before settlement (预拨资金; done by the demo script: reconciliation advance)",
        yuan(advance.amount_fen),
        advance.merchant
    );

    println!("== 旅游惠民年卡 (001 item 13): an annual card, 10 yuan subsidy once, any number of entries ==");
    let tourism = program(
        ctx,
        json!({"name": "旅游惠民年卡 tourism annual card", "funder_place": 140000,
               "province_ratio_bp": 5000, "pool": 100_000_000, "refund_policy": "restore"}),
        "creating the annual-card program",
    )
    .await?;
    let opens = Utc::now() + Duration::seconds(2);
    let cards = campaign(
        ctx,
        tourism,
        "太行山旅游惠民年卡",
        "culture_tourism",
        json!({"type": "annual_card", "subsidy": 1_000}),
        opens,
    )
    .await?;
    let gate = merchant(
        ctx,
        "JC-GATE-TAIHANG",
        "太行山大峡谷 gate",
        "culture_tourism",
        "8TH01",
        &[tourism],
    )
    .await?;
    tokio::time::sleep(
        (opens - Utc::now()).to_std().unwrap_or_default() + std::time::Duration::from_millis(200),
    )
    .await;
    let holder = ctx.mint("CARD-", 1)?;
    if let Some(who) = holder.first() {
        let code = claim_code(ctx, who, cards).await?;
        for n in 1..=3 {
            let order_ref = format!("GATE-{stamp}-{n}");
            let r = gate
                .post(
                    "/v1/redemptions",
                    &json!({"code": code, "order_amount_fen": 50_00, "order_ref": order_ref}),
                    Some(&order_ref),
                )
                .await?;
            println!(
                "  entry {n} of {}: {} with subsidy {} yuan",
                who.person_id,
                r.body["outcome"].as_str().unwrap_or("?"),
                yuan(r.body["discount_fen"].as_i64().unwrap_or(0))
            );
        }
    }
    Ok(advance)
}
