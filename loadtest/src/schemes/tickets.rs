//! The demo's scenic-ticket chapter (001 item 13): a Jincheng scheme whose province part and
//! city part are two programs; 皇城相府's signed terminal reports first-entry ticket sales, one
//! at 80% of the list price (subsidised), one above it (recorded, nothing paid), and a refund
//! of one ticket (given back exactly). The spot is in Yangcheng county, which co-funds half of
//! the city's part at settlement.

use super::{expect, program, yuan, Ctx};
use crate::client::Auth;
use crate::terminal::{self, MerchantSpec, Terminal};
use anyhow::{Context, Result};
use chrono::Duration;
use serde_json::{json, Value};
use voucher_core::CreditCode;

/// Reports one sale and prints what it earned.
async fn sale(
    t: &Terminal,
    scheme: i64,
    sale_ref: &str,
    list: i64,
    price: i64,
    q: u32,
) -> Result<Value> {
    let body = json!({"scheme_id": scheme, "sale_ref": sale_ref, "list_price_fen": list,
                      "sale_price_fen": price, "quantity": q});
    let s = expect(
        t.post("/v1/ticket-sales", &body, Some(sale_ref)).await?,
        "reporting a ticket sale",
    )?;
    println!(
        "  {q} ticket(s) listed at {} sold at {}: {}, province {} + city {} yuan",
        yuan(list),
        yuan(price),
        if s["eligible"].as_bool() == Some(true) {
            "eligible"
        } else {
            "above 80% of list, nothing"
        },
        yuan(s["total"]["province_fen"].as_i64().unwrap_or(0)),
        yuan(s["total"]["city_fen"].as_i64().unwrap_or(0)),
    );
    Ok(s)
}

/// Runs the chapter.
///
/// # Errors
/// A request the story expects to succeed did not.
pub async fn run(ctx: &Ctx<'_>) -> Result<()> {
    println!(
        "== Scenic-spot first-entry tickets (001 item 13): the city adds 20% of the sale price =="
    );
    let province = program(
        ctx,
        json!({"name": "A级景区门票补贴 (省级) scenic tickets, province part", "funder_place": 140000,
               "province_ratio_bp": 10000, "pool": 100_000_000_i64, "refund_policy": "forfeit"}),
        "creating the province's ticket program",
    )
    .await?;
    let city = program(
        ctx,
        json!({"name": "A级景区门票补贴 (市级) scenic tickets, city part", "funder_place": 140000,
               "province_ratio_bp": 0, "county_cofund_bp": 5000, "pool": 100_000_000_i64,
               "refund_policy": "forfeit"}),
        "creating the city's ticket program",
    )
    .await?;
    let head = "91140522MA0K7HXF0";
    let check = CreditCode::check_char(head).context("credit code")?;
    let spot = terminal::register(
        ctx.redemption,
        ctx.city,
        &MerchantSpec {
            id: "JC-SCENIC-HCXF",
            name: "皇城相府景区 (AAAAA)",
            credit_code: &format!("{head}{check}"),
            category: "culture_tourism",
            city: 140_500,
            county: Some(140_522),
        },
        &[province, city],
    )
    .await?;
    let scheme = expect(
        ctx.redemption_api.post_json(
            "/v1/admin/ticket-schemes",
            Auth::ApiKey(ctx.city),
            &json!({"name": "晋城A级景区首道门票补贴", "owner_place": 140500,
                    "province_program_id": province, "city_program_id": city,
                    "rule": {"max_sale_ratio_bp": 8000,
                             "province": {"basis": "discount", "rate_bp": 5000, "per_ticket_cap_fen": 1500},
                             "city_rate_bp": 2000},
                    "starts_at": ctx.now - Duration::days(1), "ends_at": ctx.now + Duration::days(180)}),
        )
        .await?,
        "creating the ticket scheme",
    )?;
    let scheme = scheme["id"].as_i64().context("scheme id")?;
    println!(
        "  scheme #{scheme}: sold at ≤ 80% of list qualifies; the city pays 20% of the sale price, \
         the province (configured: the seed states no amount) half the discount, at most 15 yuan"
    );
    let stamp = ctx.now.timestamp();
    let first = sale(&spot, scheme, &format!("HCXF-{stamp}-1"), 120_00, 96_00, 3).await?;
    sale(&spot, scheme, &format!("HCXF-{stamp}-2"), 120_00, 100_00, 2).await?;
    let id = first["sale_id"].as_str().context("sale id")?;
    let refund_ref = format!("HCXF-{stamp}-1-R1");
    let r = expect(
        spot.post(
            &format!("/v1/ticket-sales/{id}/refunds"),
            &json!({"refund_ref": refund_ref, "quantity": 1}),
            Some(&refund_ref),
        )
        .await?,
        "refunding a ticket",
    )?;
    println!(
        "  one ticket of the first sale refunded: province {} + city {} yuan given back",
        yuan(r["given_back"]["province_fen"].as_i64().unwrap_or(0)),
        yuan(r["given_back"]["city_fen"].as_i64().unwrap_or(0)),
    );
    Ok(())
}
