//! The demo's car trade-in chapter (汽车以旧换新, 004 §二(一)): two residents apply with their
//! papers, a duplicate is refused by the database, Jincheng's commerce bureau asks one of them
//! for more, then approves both; each approval is the resident's payable line, settled with
//! the province/city split by the day's settlement.

use super::{expect, yuan, Ctx};
use crate::client::Auth;
use anyhow::{Context, Result};
use chrono::{Datelike, NaiveDate};
use serde_json::{json, Value};
use uuid::Uuid;
use voucher_core::trade_in::{beijing_day, Vin};
use voucher_core::CreditCode;

/// A valid VIN: `prefix` (8 characters), its check digit, then `0KS` and `n`.
fn vin(prefix: &str, n: u32) -> Result<String> {
    let mut v = format!("{prefix}0KS{n:06}");
    let check = Vin::check_digit(&v).context("VIN check digit")?;
    v.replace_range(8..9, &check.to_string());
    Ok(v)
}

/// A unified social credit code registered in Jincheng ending in `tail` (5 characters).
fn credit(tail: &str) -> Result<String> {
    let head = format!("91140500MA0K{tail}");
    let check = CreditCode::check_char(&head).context("credit code check character")?;
    Ok(format!("{head}{check}"))
}

/// The half-year containing `day`: the seed's scheme ran for the second half of 2023; the demo
/// runs the same scheme for the half-year it is in.
fn half_year(day: NaiveDate) -> Result<(NaiveDate, NaiveDate)> {
    let (from, to) = if day.month() <= 6 {
        ((1, 1), (6, 30))
    } else {
        ((7, 1), (12, 31))
    };
    Ok((
        NaiveDate::from_ymd_opt(day.year(), from.0, from.1).context("date")?,
        NaiveDate::from_ymd_opt(day.year(), to.0, to.1).context("date")?,
    ))
}

/// Uploads one paper (a small PDF) and answers its SHA-256.
async fn paper(ctx: &Ctx<'_>, token: &str, what: &str) -> Result<String> {
    let pdf = format!("%PDF-1.4\n% {what}\n%%EOF\n").into_bytes();
    let body = expect(
        ctx.issuance
            .post_bytes(
                "/v1/trade-in/documents",
                Auth::Bearer(token),
                "application/pdf",
                pdf,
            )
            .await?,
        "uploading a paper",
    )?;
    body["sha256"]
        .as_str()
        .map(str::to_owned)
        .context("upload without sha256")
}

/// One application's body.
fn application(
    id: Uuid,
    program: i64,
    kind: &str,
    n: u32,
    day: NaiveDate,
    certificate: &str,
    invoice: &str,
) -> Result<Value> {
    let certifier = if kind == "transfer" {
        json!({"name": "晋城市诚信二手车交易市场有限公司", "credit_code": credit("2HC01")?})
    } else {
        json!({"name": "晋城市报废汽车回收拆解有限公司", "credit_code": credit("BF001")?})
    };
    Ok(json!({
        "application_id": id, "program_id": program, "kind": kind,
        "old_car": {"vin": vin("LFV2A21K", n)?, "plate": format!("晋E1234{n}")},
        "certifier": certifier, "certificate_sha256": certificate,
        "new_car": {
            "invoice_no": format!("2314200000{n:010}"), "invoice_date": day,
            "vin": vin("LSGKB54H", n)?, "price_fen": 15_000_000,
            "dealer": {"name": "晋城市长城汽车销售服务有限公司", "credit_code": credit("4D001")?},
            "invoice_sha256": invoice,
        }
    }))
}

/// Runs the chapter. Answers the trade-in program's id.
///
/// # Errors
/// A request the story expects to succeed did not.
pub async fn run(ctx: &Ctx<'_>) -> Result<i64> {
    println!("== Car trade-in (汽车以旧换新, 004 §二(一)): applications on papers, reviewed by the city ==");
    let today = beijing_day(ctx.now);
    let (opens_on, closes_on) = half_year(today)?;
    let program = expect(
        ctx.issuance
            .post_json(
                "/v1/admin/programs",
                Auth::ApiKey(ctx.province),
                &json!({"name": "汽车以旧换新 car trade-in", "funder_place": 140000,
                        "province_ratio_bp": 5000, "pool": 2_000_000_000_i64,
                        "refund_policy": "forfeit"}),
            )
            .await?,
        "creating the trade-in program",
    )?;
    let program = program["id"].as_i64().context("program id")?;
    expect(
        ctx.issuance
            .post_json(
                "/v1/admin/trade-in/schemes",
                Auth::ApiKey(ctx.province),
                &json!({"program_id": program, "opens_on": opens_on, "closes_on": closes_on,
                        "transfer_cap_fen": 200_000, "scrap_cap_fen": 300_000}),
            )
            .await?,
        "creating the trade-in scheme",
    )?;
    println!(
        "  program #{program}: up to {} yuan for a transfer, {} for a scrap, {opens_on}..={closes_on} \
         (the seed's window was the second half of 2023); the province pays 50%",
        yuan(200_000),
        yuan(300_000)
    );

    let people = ctx.mint("TRADEIN-", 2)?;
    let mut ids = Vec::new();
    for (n, (who, kind)) in (1u32..).zip(people.iter().zip(["transfer", "scrap"])) {
        let certificate = paper(
            ctx,
            &who.token,
            &format!("{kind} certificate of {}", who.person_id),
        )
        .await?;
        let invoice = paper(ctx, &who.token, &format!("invoice of {}", who.person_id)).await?;
        let id = Uuid::new_v4();
        let body = application(id, program, kind, n, today, &certificate, &invoice)?;
        let a = expect(
            ctx.issuance
                .post_json("/v1/trade-in/applications", Auth::Bearer(&who.token), &body)
                .await?,
            "submitting an application",
        )?;
        println!(
            "  {} applies ({kind}): {} yuan, status {}",
            who.person_id,
            yuan(a["amount_fen"].as_i64().unwrap_or(0)),
            a["status"].as_str().unwrap_or("?")
        );
        // The same old car again, under a new application id: the database refuses it.
        if n == 1 {
            let mut again = body.clone();
            again["application_id"] = json!(Uuid::new_v4());
            let r = ctx
                .issuance
                .post_json(
                    "/v1/trade-in/applications",
                    Auth::Bearer(&who.token),
                    &again,
                )
                .await?;
            println!(
                "  the same car applied for again: {} {}",
                r.status.as_u16(),
                r.code().unwrap_or("")
            );
        }
        ids.push((id, who, body));
    }

    // The city's commerce bureau reviews: more papers from the second, then both approved.
    let queue = expect(
        ctx.issuance
            .get(
                "/v1/admin/trade-in/applications?status=submitted",
                Auth::ApiKey(ctx.city),
            )
            .await?,
        "listing the review queue",
    )?;
    println!(
        "  Jincheng's review queue: {} application(s)",
        queue["applications"]
            .as_array()
            .or(queue.as_array())
            .map_or(0, Vec::len)
    );
    if let Some((id, who, body)) = ids.get(1) {
        expect(
            ctx.issuance
                .post_json(
                    &format!("/v1/admin/trade-in/applications/{id}/request-more"),
                    Auth::ApiKey(ctx.city),
                    &json!({"what": "报废机动车回收证明 page 2 is missing"}),
                )
                .await?,
            "asking for more",
        )?;
        let mut amended = body.clone();
        if let Some(o) = amended.as_object_mut() {
            o.remove("application_id");
            o.remove("program_id");
        }
        amended["certificate_sha256"] = json!(
            paper(
                ctx,
                &who.token,
                &format!("complete certificate of {}", who.person_id)
            )
            .await?
        );
        expect(
            ctx.issuance
                .put_json(
                    &format!("/v1/trade-in/applications/{id}"),
                    Auth::Bearer(&who.token),
                    &amended,
                )
                .await?,
            "amending the application",
        )?;
        println!(
            "  the bureau asks {} for the full certificate; they upload it",
            who.person_id
        );
    }
    for (id, who, _) in &ids {
        let a = expect(
            ctx.issuance
                .post_json(
                    &format!("/v1/admin/trade-in/applications/{id}/approve"),
                    Auth::ApiKey(ctx.city),
                    &json!({}),
                )
                .await?,
            "approving an application",
        )?;
        println!(
            "  approved for {}: {} yuan payable to the resident (subsidy line {})",
            who.person_id,
            yuan(a["amount_fen"].as_i64().unwrap_or(0)),
            a["subsidy_line_id"].as_str().unwrap_or("?")
        );
    }
    Ok(program)
}
