//! The demo driver, run by `deploy/local/demo.sh` once the services are up: creates the sample
//! province programs and Jincheng campaigns, issues union vouchers to a list, runs a small
//! rush of residents, and prints what happened.

use anyhow::{bail, Context, Result};
use chrono::{Duration as ChronoDuration, Utc};
use clap::Parser;
use loadtest::client::{admin_key, Auth, IssuanceClient, Reply};
use loadtest::{residents, rush, schemes, terminal};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;
use voucher_core::PlaceCode;

#[derive(Parser, Debug)]
#[command(about = "Drives the demo against a running issuance service")]
struct Args {
    /// Issuance service base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    issuance: String,
    /// Directory with the generated secrets (idp-signing.json, admin-keys.plain.json).
    #[arg(long, default_value = ".local/secrets")]
    secrets_dir: PathBuf,
    /// Residents in the rush.
    #[arg(long, default_value_t = 3000)]
    residents: usize,
    /// Phones per resident (each claims at once).
    #[arg(long, default_value_t = 2)]
    devices: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 128)]
    concurrency: usize,
    /// Redemption service base URL.
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    redemption: String,
    /// Vouchers of each campaign spent at checkout after the rush.
    #[arg(long, default_value_t = 200)]
    spend: usize,
}

fn expect(reply: Reply, what: &str) -> Result<Value> {
    if !reply.status.is_success() {
        bail!("{what} failed: {} {}", reply.status, reply.body);
    }
    Ok(reply.body)
}

fn id_of(v: &Value) -> Result<i64> {
    v.get("id")
        .and_then(Value::as_i64)
        .context("response without id")
}

/// Writes a secret the demo script passes on (`--api-key-file`), readable by the owner only.
fn write_private(path: &std::path::Path, secret: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(secret.as_bytes())?;
    Ok(())
}

fn yuan(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let api = IssuanceClient::new(&args.issuance, args.concurrency)?;
    api.wait_ready(Duration::from_secs(60)).await?;
    let province = admin_key(&args.secrets_dir, 140_000)?;
    let jincheng = admin_key(&args.secrets_dir, 140_500)?;
    let now = Utc::now();

    println!("== Programs (province, 山西省) ==");
    let furnishing = expect(
        api.post_json(
            "/v1/admin/programs",
            Auth::ApiKey(&province),
            &json!({
                "name": "家居惠民 home furnishing 10% instant discount",
                "funder_place": 140000, "province_ratio_bp": 5000, "pool": 20_000_000_000_i64,
                "refund_policy": "restore"
            }),
        )
        .await?,
        "creating the home-furnishing program",
    )?;
    let consumption = expect(
        api.post_json(
            "/v1/admin/programs",
            Auth::ApiKey(&province),
            &json!({
                "name": "住宿餐饮文旅数字消费券 lodging, catering, culture-and-tourism vouchers",
                "funder_place": 140000, "province_ratio_bp": 5000, "pool": 5_000_000_000_i64,
                "city_allocations": {"140500": 500_000_000_i64}, "refund_policy": "restore"
            }),
        )
        .await?,
        "creating the consumption-voucher program",
    )?;
    for p in [&furnishing, &consumption] {
        println!(
            "  #{} {}: province pays {}% of city spending, pool {} yuan",
            id_of(p)?,
            p["name"].as_str().unwrap_or(""),
            p["province_ratio_bp"].as_i64().unwrap_or(0) / 100,
            yuan(p["pool"].as_i64().unwrap_or(0))
        );
    }

    println!("== Campaigns (晋城 Jincheng 140500) ==");
    let opens = now + ChronoDuration::seconds(4);
    let round = |no: u32, at: chrono::DateTime<Utc>, q: u32| json!({"round_no": no, "starts_at": at, "quantity": q});
    let specs = [
        (
            "catering",
            json!({
            "program_id": id_of(&consumption)?, "name": "晋城餐饮券 满100减20",
            "owner_place": 140500, "category": "catering",
            "rule": {"type": "threshold", "min_spend": 10_000, "off": 2_000},
            "stock": 1000, "per_person_limit": 1,
            "rounds": [round(1, opens, 1000)],
            "validity": {"days_after_claim": 7}, "budget": 2_000_000,
            "eligibility": {"places": [140500], "min_real_name_level": 2},
            "distribution": "claim"}),
        ),
        (
            "culture",
            json!({
            "program_id": id_of(&consumption)?, "name": "晋城文旅券 满50减15",
            "owner_place": 140500, "category": "culture_tourism",
            "rule": {"type": "threshold", "min_spend": 5_000, "off": 1_500},
            "stock": 500, "per_person_limit": 1,
            "rounds": [round(1, opens, 300), round(2, opens + ChronoDuration::days(7), 200)],
            "validity": {"days_after_claim": 7}, "budget": 750_000,
            "eligibility": {"places": [140500], "min_real_name_level": 2},
            "distribution": "claim"}),
        ),
        (
            "furnishing",
            json!({
            "program_id": id_of(&furnishing)?, "name": "晋城家居惠民 10% 立减 (上限2000元)",
            "owner_place": 140500, "category": "home_furnishing",
            "rule": {"type": "percent", "rate_bp": 1000, "per_person_cap": 200_000},
            "stock": 2000, "per_person_limit": 1,
            "rounds": [round(1, opens, 2000)],
            "validity": {"ends_at": now + ChronoDuration::days(60)}, "budget": 100_000_000,
            "eligibility": {"places": [140500], "min_real_name_level": 2},
            "distribution": "claim"}),
        ),
        (
            "union",
            json!({
            "program_id": id_of(&consumption)?, "name": "晋城工会职工餐饮券 (名单发放)",
            "owner_place": 140500, "category": "catering",
            "rule": {"type": "threshold", "min_spend": 0, "off": 5_000},
            "stock": 200, "per_person_limit": 1,
            "validity": {"days_after_claim": 30}, "budget": 1_000_000,
            "eligibility": {"places": [140500], "min_real_name_level": 0},
            "distribution": "list"}),
        ),
    ];
    let mut ids = std::collections::BTreeMap::new();
    for (key, spec) in specs {
        let c = expect(
            api.post_json("/v1/admin/campaigns", Auth::ApiKey(&jincheng), &spec)
                .await?,
            key,
        )?;
        println!(
            "  #{} {} (stock {})",
            id_of(&c)?,
            c["name"].as_str().unwrap_or(""),
            c["stock"]
        );
        ids.insert(key, id_of(&c)?);
    }

    println!("== Bulk issuance: union catering vouchers to 150 employees ==");
    let mut csv = String::from("person_id,name\n");
    for n in 1..=150 {
        csv.push_str(&format!("E{n:06},职工{n}\n"));
    }
    csv.push_str("not a valid id!,bad row\nE000001,duplicate row\n");
    let path = format!("/v1/admin/campaigns/{}/bulk-issuances", ids["union"]);
    for attempt in ["first upload", "same file again"] {
        let r = expect(
            api.post_csv(&path, Auth::ApiKey(&jincheng), csv.clone())
                .await?,
            "bulk issuance",
        )?;
        println!(
            "  {attempt}: issued {}, skipped {}, invalid {}",
            r["issued"], r["skipped"], r["invalid"]
        );
    }

    println!(
        "== The rush: {} residents × {} phones, {} in flight ==",
        args.residents, args.devices, args.concurrency
    );
    let idp = residents::load_idp_key(&args.secrets_dir)?;
    let home = PlaceCode::try_from(140_500).context("place")?;
    let people = residents::mint(&idp, "R", args.residents, home, 2, Utc::now())?;
    let wait = (opens - Utc::now()).to_std().unwrap_or_default();
    println!("  round 1 opens at {opens}; waiting {:.1?}", wait);
    tokio::time::sleep(wait + Duration::from_millis(50)).await;
    let mut handed_out = std::collections::BTreeMap::new();
    for key in ["catering", "culture", "furnishing"] {
        let r = rush::run(&api, ids[key], &people, args.devices, args.concurrency).await?;
        let h = &r.latency_us;
        println!(
            "  {key:<10} {} requests in {:.2?} ({} req/s); latency p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            r.outcomes.values().sum::<u64>(), r.elapsed, r.throughput(),
            ms(h.value_at_quantile(0.5)), ms(h.value_at_quantile(0.9)), ms(h.value_at_quantile(0.99)), ms(h.max()),
        );
        println!("             outcomes: {:?}", r.outcomes);
        let mut holders = std::collections::HashSet::new();
        let doubles = r
            .vouchers
            .iter()
            .filter(|(p, _)| !holders.insert(p.clone()))
            .count();
        println!(
            "             vouchers handed out: {}, residents holding two: {doubles}",
            r.vouchers.len()
        );
        handed_out.insert(key, r.vouchers);
    }

    println!("== After the rush: Redis counters and the PostgreSQL record ==");
    for (key, id) in &ids {
        let counters = wait_persisted(&api, &jincheng, *id).await?;
        println!("  {key:<10} {counters}");
    }

    println!("== A resident's phone ==");
    let me = &people[0];
    let mine = expect(
        api.get("/v1/me/vouchers", Auth::Bearer(&me.token)).await?,
        "my vouchers",
    )?;
    let list = mine.as_array().cloned().unwrap_or_default();
    println!("  {} holds {} vouchers", me.person_id, list.len());
    if let Some(v) = list.first() {
        let vid = v["voucher_id"].as_str().unwrap_or("");
        let code = expect(
            api.get(
                &format!("/v1/me/vouchers/{vid}/code"),
                Auth::Bearer(&me.token),
            )
            .await?,
            "dynamic code",
        )?;
        let text = code["code"].as_str().unwrap_or("");
        println!(
            "  dynamic code for {vid}: {} characters, refresh at {}",
            text.len(),
            code["refresh_at"]
        );
    }
    let forged = format!("{}x", me.token);
    let r = api
        .claim(&forged, ids["catering"], uuid::Uuid::new_v4())
        .await?;
    println!(
        "  a forged identity token is refused: {} {}",
        r.status,
        r.code().unwrap_or("")
    );

    let programs = [
        ("catering", id_of(&consumption)?),
        ("culture", id_of(&consumption)?),
        ("furnishing", id_of(&furnishing)?),
    ];
    checkout(&args, &api, &jincheng, &people, &handed_out, &programs).await?;
    let redemption_api = IssuanceClient::new(&args.redemption, 4)?;
    let ctx = schemes::Ctx {
        issuance: &api,
        redemption: &args.redemption,
        redemption_api: &redemption_api,
        province: &province,
        city: &jincheng,
        idp: &idp,
        now: Utc::now(),
        state_dir: args
            .secrets_dir
            .parent()
            .unwrap_or(std::path::Path::new(".")),
    };
    schemes::trade_in::run(&ctx).await?;
    schemes::tickets::run(&ctx).await?;
    let advance = schemes::checkout::run(&ctx).await?;
    schemes::lottery::run(&ctx, id_of(&consumption)?).await?;
    // The advance is the finance department's act (reconciliation advance): the demo script
    // makes it before settling, from this file.
    std::fs::write(
        ctx.state_dir.join("demo-advance.env"),
        format!(
            "ADVANCE_PROGRAM={}\nADVANCE_MERCHANT={}\nADVANCE_FEN={}\n",
            advance.program, advance.merchant, advance.amount_fen
        ),
    )
    .context("writing demo-advance.env")?;
    write_private(&ctx.state_dir.join("province-officer.key"), &province)?;
    pages(&args, &api, &jincheng, id_of(&consumption)?).await?;
    println!("== Demo done ==");
    Ok(())
}

/// Sets up something to try on the pages: a campaign whose round opens in 90 seconds (the
/// phone page counts down to it) and a one-time pairing code for a web till of the catering
/// merchant; prints where to open them.
async fn pages(args: &Args, api: &IssuanceClient, jincheng: &str, program: i64) -> Result<()> {
    println!("== The pages ==");
    let opens = Utc::now() + ChronoDuration::seconds(90);
    let campaign = expect(
        api.post_json(
            "/v1/admin/campaigns",
            Auth::ApiKey(jincheng),
            &json!({
                "program_id": program, "name": "晋城餐饮券 体验场 满100减20",
                "owner_place": 140500, "category": "catering",
                "rule": {"type": "threshold", "min_spend": 10_000, "off": 2_000},
                "stock": 1000, "per_person_limit": 1,
                "rounds": [{"round_no": 1, "starts_at": opens, "quantity": 1000}],
                "validity": {"days_after_claim": 7}, "budget": 2_000_000,
                "eligibility": {"places": [140500], "min_real_name_level": 1},
                "distribution": "claim"}),
        )
        .await?,
        "creating the campaign to try",
    )?;
    let redemption = IssuanceClient::new(&args.redemption, 1)?;
    let pairing = expect(
        redemption
            .post_json(
                "/v1/admin/merchants/JC-CAT-001/pairings",
                Auth::ApiKey(jincheng),
                &json!({}),
            )
            .await?,
        "creating a pairing code for a web till",
    )?;
    println!(
        "  campaign #{} \"{}\" opens at {} (in 90 s)",
        id_of(&campaign)?,
        campaign["name"].as_str().unwrap_or(""),
        opens
            .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).context("offset")?)
            .format("%H:%M:%S"),
    );
    println!(
        "  residents' page (open it at phone size):  {}/app/",
        args.issuance
    );
    println!(
        "    sign in with the dev sign-in: any id, 晋城市, level 2; claim when the round opens"
    );
    println!(
        "  the till of 晋城老字号饭店 (pairs itself; the code works once, for 10 minutes): {}{}",
        args.redemption,
        pairing["pairing_path"].as_str().unwrap_or("")
    );
    println!(
        "    pairing code {}; another one: POST {}/v1/admin/merchants/JC-CAT-001/pairings with X-Api-Key",
        pairing["pairing_code"].as_str().unwrap_or(""),
        args.redemption
    );
    Ok(())
}

fn ms(us: u64) -> f64 {
    // Display only: latency in milliseconds, never money.
    #[allow(clippy::cast_precision_loss, clippy::float_arithmetic)]
    let v = us as f64 / 1000.0;
    v
}

/// Polls the campaign's counters until everything claimed is in PostgreSQL.
async fn wait_persisted(api: &IssuanceClient, key: &str, id: i64) -> Result<Value> {
    let path = format!("/v1/admin/campaigns/{id}/counters");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let body = expect(api.get(&path, Auth::ApiKey(key)).await?, "counters")?;
        let claimed = body.pointer("/live/claimed").and_then(Value::as_i64);
        let persisted = body.pointer("/persisted/total").and_then(Value::as_i64);
        if claimed == persisted || tokio::time::Instant::now() > deadline {
            return Ok(body);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Merchants spend some of the vouchers at signed terminals: approvals, a double-spend
/// attempt, the 2,000-yuan cap, and a refund.
async fn checkout(
    args: &Args,
    api: &IssuanceClient,
    jincheng: &str,
    people: &[residents::Resident],
    handed_out: &std::collections::BTreeMap<&str, Vec<(String, String)>>,
    programs: &[(&str, i64)],
) -> Result<()> {
    println!("== Merchants (晋城) and their terminals ==");
    let ready = IssuanceClient::new(&args.redemption, 1)?;
    ready
        .wait_ready(Duration::from_secs(60))
        .await
        .context("the redemption service is not ready")?;
    let specs = [
        (
            "catering",
            "JC-CAT-001",
            "晋城老字号饭店",
            "catering",
            Some(140_522),
        ),
        (
            "culture",
            "JC-CUL-001",
            "皇城相府景区",
            "culture_tourism",
            Some(140_522),
        ),
        (
            "furnishing",
            "JC-HOM-001",
            "晋城家居广场",
            "home_furnishing",
            None,
        ),
    ];
    let mut terminals = std::collections::BTreeMap::new();
    for (n, (key, id, name, category, county)) in (1u32..).zip(specs) {
        let head = format!("91140500MA{n:07}");
        let check = voucher_core::CreditCode::check_char(&head).context("credit code")?;
        let program = programs
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, p)| *p)
            .context("program")?;
        let spec = terminal::MerchantSpec {
            id,
            name,
            credit_code: &format!("{head}{check}"),
            category,
            city: 140_500,
            county,
        };
        let t = terminal::register(&args.redemption, jincheng, &spec, &[program]).await?;
        println!("  {id} {name} ({category}): terminal key {}", t.key_id);
        terminals.insert(key, t);
    }

    println!(
        "== Checkout: {} vouchers of each campaign spent at the terminals ==",
        args.spend
    );
    let tokens: std::collections::HashMap<&str, &str> = people
        .iter()
        .map(|p| (p.person_id.as_str(), p.token.as_str()))
        .collect();
    let mut latency = hdrhistogram::Histogram::<u64>::new(3).context("histogram")?;
    let mut spent = Vec::new();
    for key in ["catering", "culture", "furnishing"] {
        let (Some(vouchers), Some(term)) = (handed_out.get(key), terminals.get(key)) else {
            continue;
        };
        let mut outcomes = std::collections::BTreeMap::<String, u64>::new();
        let (mut discount, mut sales) = (0i64, 0i64);
        for (i, (person, voucher)) in vouchers.iter().take(args.spend).enumerate() {
            let Some(token) = tokens.get(person.as_str()) else {
                continue;
            };
            let code = expect(
                api.get(
                    &format!("/v1/me/vouchers/{voucher}/code"),
                    Auth::Bearer(token),
                )
                .await?,
                "dynamic code",
            )?;
            let code = code["code"].as_str().unwrap_or_default().to_owned();
            // Orders between 100 and 600 yuan; home furnishing orders of 5,000 to 25,000 yuan.
            let step = i64::try_from(i % 50).unwrap_or(0);
            let amount = if key == "furnishing" {
                500_000 + step * 40_000
            } else {
                10_000 + step * 1_000
            };
            let started = std::time::Instant::now();
            let r = term
                .redeem(&code, amount, &format!("{}-{i:05}", term.merchant_id))
                .await?;
            latency
                .record(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX))
                .ok();
            let outcome = r.body["outcome"]
                .as_str()
                .map_or_else(|| r.code().unwrap_or("error").to_owned(), str::to_owned);
            let label = r.body["reason"]
                .as_str()
                .map_or(outcome, |reason| format!("declined {reason}"));
            *outcomes.entry(label).or_default() += 1;
            if r.body["outcome"] == "approved" {
                discount += r.body["discount_fen"].as_i64().unwrap_or(0);
                sales += amount;
            }
            if i == 0 {
                spent.push((key, code, r.body.clone()));
            }
        }
        println!(
            "  {key:<10} {outcomes:?}: sales {} yuan, discounts {} yuan",
            yuan(sales),
            yuan(discount)
        );
    }
    let h = &latency;
    println!(
        "  redemption latency (sequential, durable in PostgreSQL): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(h.value_at_quantile(0.5)), ms(h.value_at_quantile(0.99)), ms(h.max())
    );

    println!("== The same voucher again, at another counter ==");
    if let Some((key, code, first)) = spent.first() {
        let term = &terminals[key];
        let again = term
            .redeem(code, 20_000, &format!("{}-again", term.merchant_id))
            .await?;
        println!(
            "  first: {} discount {} fen; again: {} {}",
            first["outcome"], first["discount_fen"], again.body["outcome"], again.body["reason"]
        );
    }
    if let Some((_, _, first)) = spent.iter().find(|(k, _, _)| *k == "furnishing") {
        let term = &terminals["furnishing"];
        let id = first["redemption_id"].as_str().unwrap_or_default();
        let body = json!({ "reversal_ref": "refund-1" });
        let r = term
            .post(&format!("/v1/redemptions/{id}/reversals"), &body, None)
            .await?;
        println!("== A refund (退货) of a home-furnishing sale ==");
        println!("  {} {}", r.status, r.body);
    }
    Ok(())
}
