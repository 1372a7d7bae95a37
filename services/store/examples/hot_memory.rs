//! Redis bytes per live voucher of the hot layout: syncs a campaign of `--stock` vouchers
//! into the Redis at `--url` (key prefix `memprobe`, deleted before and after), claims all of
//! them through [`HotStore::claim`] with 18-character person ids (one voucher each), trims
//! the outbox as the persister would, and prints `(used_memory after − before) / vouchers`.
//!
//! `cargo run --release -p voucher-store --example hot_memory -- redis://127.0.0.1:6379 200000`

use chrono::{Duration, Utc};
use futures::StreamExt;
use uuid::Uuid;
use voucher_core::{Campaign, CampaignId, ClaimId, PersonId, VoucherId};
use voucher_store::{ClaimMode, ClaimOutcome, ClaimRequest, HotStore};

const PREFIX: &str = "memprobe";
const ID: i64 = 990_001;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

async fn used_memory(con: &mut redis::aio::MultiplexedConnection) -> Res<u64> {
    let info: redis::InfoDict = redis::cmd("INFO").arg("memory").query_async(con).await?;
    Ok(info.get::<u64>("used_memory").ok_or("no used_memory")?)
}

async fn delete(con: &mut redis::aio::MultiplexedConnection) -> Res<()> {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{PREFIX}:{{c{ID}}}:*"))
        .query_async(con)
        .await?;
    for key in keys {
        let _: i64 = redis::cmd("UNLINK").arg(key).query_async(con).await?;
    }
    let _: i64 = redis::cmd("DEL")
        .arg(format!("{PREFIX}:campaigns"))
        .query_async(con)
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Res<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let stock: u32 = args.next().map_or(Ok(200_000), |s| s.parse())?;
    let opens = Utc::now() - Duration::seconds(1);
    let campaign: Campaign = serde_json::from_value(serde_json::json!({
        "id": ID, "status": "active",
        "program_id": 1, "name": "memprobe", "owner_place": 140500, "category": "catering",
        "rule": {"type": "threshold", "min_spend": 10_000, "off": 2_000},
        "stock": stock, "per_person_limit": 1,
        "rounds": [{"round_no": 1, "starts_at": opens, "quantity": stock}],
        "validity": {"days_after_claim": 7}, "budget": i64::from(stock) * 2_000,
        "eligibility": {"places": [140500], "min_real_name_level": 2},
        "distribution": "claim"
    }))?;
    let client = redis::Client::open(url.as_str())?;
    let mut con = client.get_multiplexed_async_connection().await?;
    delete(&mut con).await?;
    let hot = HotStore::connect(&url, PREFIX).await?;
    hot.sync_campaign(&campaign).await?;
    let before = used_memory(&mut con).await?;
    let (valid_from, valid_until) = (opens, opens + Duration::days(7));
    let outcomes: Vec<_> = futures::stream::iter(1..=stock)
        .map(|n| {
            let hot = hot.clone();
            async move {
                let req = ClaimRequest {
                    campaign_id: CampaignId(ID),
                    person_id: PersonId::parse(&format!("1405{n:014}")).expect("person id"),
                    claim_id: ClaimId(Uuid::new_v4()),
                    voucher_id: VoucherId(Uuid::now_v7()),
                    round_no: 1,
                    now: Utc::now(),
                    valid_from,
                    valid_until,
                    mode: ClaimMode::Rush,
                };
                hot.claim(&req).await
            }
        })
        .buffer_unordered(256)
        .collect()
        .await;
    let claimed = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(ClaimOutcome::Claimed(_))))
        .count();
    let _: i64 = redis::cmd("XTRIM")
        .arg(hot.outbox_key(CampaignId(ID)))
        .arg("MAXLEN")
        .arg(0)
        .query_async(&mut con)
        .await?;
    let after = used_memory(&mut con).await?;
    let encodings: Vec<String> = {
        let mut e = Vec::new();
        for key in [
            format!("{PREFIX}:{{c{ID}}}:v:0"),
            format!("{PREFIX}:{{c{ID}}}:p:0"),
        ] {
            let enc: Option<String> = redis::cmd("OBJECT")
                .arg("ENCODING")
                .arg(&key)
                .query_async(&mut con)
                .await?;
            e.push(format!("{key}={}", enc.unwrap_or_default()));
        }
        e
    };
    delete(&mut con).await?;
    let vouchers = u64::try_from(claimed)?.max(1);
    println!(
        "stock {stock}, claimed {claimed}, used_memory {before} → {after}: {} bytes per live voucher ({})",
        after.saturating_sub(before) / vouchers,
        encodings.join(", ")
    );
    Ok(())
}
