//! The demo's lottery chapter (报名摇号): a catering release too popular for a rush is given
//! as a lottery round. The commitment is published when the round is created; 40 residents
//! register (one registers twice: still one entry); after the window the city draws; the
//! winners' vouchers come through the claim script and outbox; the published draw is saved
//! for `issuance verify-draw`.

use super::{expect, Ctx};
use crate::client::Auth;
use anyhow::{Context, Result};
use chrono::{Duration, Utc};
use serde_json::json;

/// Runs the chapter. Answers the path of the saved published draw.
///
/// # Errors
/// A request the story expects to succeed did not.
pub async fn run(ctx: &Ctx<'_>, program: i64) -> Result<std::path::PathBuf> {
    println!("== A lottery round (报名摇号): registration, a committed seed, a public draw ==");
    let now = Utc::now();
    let opens = now + Duration::seconds(3);
    let closes = now + Duration::seconds(15);
    let campaign = expect(
        ctx.issuance
            .post_json(
                "/v1/admin/campaigns",
                Auth::ApiKey(ctx.city),
                &json!({"program_id": program, "name": "晋城餐饮券 报名摇号 满100减20 (lottery)",
                        "owner_place": 140500, "category": "catering",
                        "rule": {"type": "threshold", "min_spend": 10_000, "off": 2_000},
                        "stock": 100, "per_person_limit": 1, "validity": {"days_after_claim": 7},
                        "budget": 200_000, "eligibility": {"places": [140500], "min_real_name_level": 2},
                        "distribution": "claim",
                        "rounds": [
                            {"round_no": 1, "starts_at": closes, "quantity": 10, "mode": "lottery",
                             "registration_opens_at": opens, "registration_closes_at": closes},
                            {"round_no": 2, "starts_at": now + Duration::days(1), "quantity": 90}]}),
            )
            .await?,
        "creating the lottery campaign",
    )?;
    let id = campaign["id"].as_i64().context("campaign id")?;
    println!(
        "  campaign #{id}: 10 vouchers by lottery; commitment SHA-256(seed) = {}",
        campaign["rounds"][0]["commitment"].as_str().unwrap_or("?")
    );
    let people = ctx.mint("LOTTERY-", 40)?;
    tokio::time::sleep(
        (opens - Utc::now()).to_std().unwrap_or_default() + std::time::Duration::from_millis(200),
    )
    .await;
    let path = format!("/v1/campaigns/{id}/rounds/1/registrations");
    for who in &people {
        expect(
            ctx.issuance
                .post_json(&path, Auth::Bearer(&who.token), &json!({}))
                .await?,
            "registering",
        )?;
    }
    if let Some(who) = people.first() {
        let again = ctx
            .issuance
            .post_json(&path, Auth::Bearer(&who.token), &json!({}))
            .await?;
        println!(
            "  40 residents registered; {} registering again gets {} (replayed: {})",
            who.person_id,
            again.status.as_u16(),
            again.body["replayed"]
        );
    }
    tokio::time::sleep(
        (closes - Utc::now()).to_std().unwrap_or_default() + std::time::Duration::from_millis(300),
    )
    .await;
    let drawn = expect(
        ctx.issuance
            .post_json(
                &format!("/v1/admin/campaigns/{id}/rounds/1/draw"),
                Auth::ApiKey(ctx.city),
                &json!({}),
            )
            .await?,
        "drawing",
    )?;
    println!(
        "  drawn: {} winners issued, {} refused, {} pending",
        drawn["issued"], drawn["refused"], drawn["pending"]
    );
    let published = expect(
        ctx.issuance
            .get(&format!("/v1/campaigns/{id}/rounds/1/draw"), Auth::None)
            .await?,
        "fetching the published draw",
    )?;
    println!(
        "  seed revealed: {}; {} registration hashes published",
        published["seed"].as_str().unwrap_or("?"),
        published["registration_hashes"]
            .as_array()
            .map_or(0, Vec::len)
    );
    let file = ctx.state_dir.join("lottery-draw.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&published)?)
        .with_context(|| format!("writing {}", file.display()))?;
    if let Some(who) = people.first() {
        let mine = expect(
            ctx.issuance
                .get(&format!("{path}/me"), Auth::Bearer(&who.token))
                .await?,
            "my registration",
        )?;
        println!(
            "  {} looks up their result: {}",
            who.person_id, mine["result"]
        );
    }
    println!(
        "  published draw saved to {} (check it: issuance verify-draw --file …)",
        file.display()
    );
    Ok(file)
}
