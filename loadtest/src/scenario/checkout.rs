//! Checkout at the counter: merchants' terminals redeem vouchers that residents claimed,
//! every request signed with the terminal's key and carrying an `Idempotency-Key`, each
//! decision committed in PostgreSQL before the terminal hears "approved".
//!
//! - **Set up** ([`prepare`]): a program with two campaigns of Jincheng — a threshold catering
//!   voucher (满100减20, spent whole) and a 10 % home-furnishing entitlement (capped per
//!   person) —, residents claim them over HTTP (the signed tokens come back), the outbox
//!   drains, and `merchants` merchants (a quarter of them home-furnishing) get `terminals`
//!   terminals in all, each with its own connection.
//! - **Drive** ([`drive_checkout`]): every threshold voucher is presented once; every
//!   `duplicate_every`-th one is also presented at a terminal of another merchant at the same
//!   moment (the screenshot passed around: one approval, one `VOUCHER_ALREADY_REDEEMED`);
//!   every entitlement is spent by two purchases at two terminals at once whose 10 % together
//!   exceed the person's cap. The dynamic code is computed right before each request, from
//!   the secrets directory's dynamic-code secret, as the phone's app gets it from the
//!   service, so it is always within its time step.
//! - **Verify** ([`verify`]): from PostgreSQL — approved answers = redemption rows, no
//!   single-use voucher redeemed twice, no person's discounts above the cap (and equal to the
//!   entitlement's use), Σ discounts per campaign within its budget (and buckets + discounts
//!   = budget), and no outcome other than approvals and the expected double-spend refusals.

use super::rush::{wait_drained, RushTarget, CITY, PROVINCE};
use super::Scenario;
use crate::client::{Auth, IssuanceClient, Reply};
use crate::driver::{drive, Pace};
use crate::invariants::Invariants;
use crate::probe::{RssReading, RssSampler};
use crate::residents;
use crate::stats::{Outcome, Summary};
use crate::terminal::{self, MerchantSpec, Terminal};
use anyhow::{bail, Context, Result};
use futures::stream::{self, StreamExt as _};
use serde::Serialize;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use voucher_core::dynamic_code::DynamicCodes;
use voucher_core::token::VoucherToken;
use voucher_core::{CampaignId, Clock, PlaceCode, VoucherId};

/// The success label of an approval.
pub const REDEEMED: &str = "redeemed";
/// The success label of an approval whose discount the person's cap cut.
pub const REDEEMED_CAPPED: &str = "redeemed (cap reached)";
/// The success label of an approval whose discount the campaign's budget cut.
pub const REDEEMED_BUDGET: &str = "redeemed (budget reached)";
/// The expected refusal: the other terminal won the voucher.
pub const ALREADY_REDEEMED: &str = "VOUCHER_ALREADY_REDEEMED";

/// A home-furnishing purchase, fen (15,000 yuan: 1,500 yuan of discount, so the second of a
/// person's two purchases hits the 2,000-yuan cap).
const FURNISHING_ORDER_FEN: i64 = 1_500_000;
/// The person's cap of the home-furnishing campaign, fen (2,000 yuan).
const FURNISHING_CAP_FEN: i64 = 200_000;
/// The threshold voucher: 满100减20.
const THRESHOLD_MIN_FEN: i64 = 10_000;
const THRESHOLD_OFF_FEN: i64 = 2_000;

/// Where the services and their stores are.
pub struct CheckoutTarget {
    /// The issuance service (claims) and the shared stores.
    pub issuance: RushTarget,
    /// The redemption service, e.g. `http://127.0.0.1:8081`.
    pub redemption_url: String,
    /// The redemption service's process id, to read its memory (`None` in tests).
    pub redemption_pid: Option<u32>,
    /// The secrets directory shared by the services (`dynamic-code.secret`).
    pub secrets_dir: PathBuf,
    /// The services' dynamic-code step, seconds.
    pub code_step_secs: u32,
    /// The services' clock (dynamic codes are computed at its now).
    pub clock: Arc<dyn Clock>,
}

/// The shape of a checkout run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CheckoutWorkload {
    /// Threshold vouchers, each presented once.
    pub vouchers: usize,
    /// Home-furnishing entitlements, each spent by two purchases at once.
    pub entitlements: usize,
    /// Every n-th threshold voucher is also presented at a second terminal at the same time
    /// (0: never).
    pub duplicate_every: usize,
    /// Merchants.
    pub merchants: usize,
    /// Terminals in all (one connection each).
    pub terminals: usize,
    /// Closed loop (`concurrency` = terminals) or open loop.
    pub pace: Pace,
    /// Stop issuing new attempts after this many seconds (0 = run every attempt).
    pub max_secs: u64,
}

impl CheckoutWorkload {
    /// Duplicate presentations planned.
    pub fn duplicates(&self) -> usize {
        if self.duplicate_every == 0 {
            0
        } else {
            self.vouchers.div_ceil(self.duplicate_every)
        }
    }

    /// Requests in all.
    pub fn attempts(&self) -> usize {
        self.vouchers + self.duplicates() + 2 * self.entitlements
    }

    fn deadline(&self) -> Option<Duration> {
        (self.max_secs > 0).then(|| Duration::from_secs(self.max_secs))
    }
}

/// What one checkout run did.
#[derive(Debug, Clone, Serialize)]
pub struct CheckoutReport {
    /// `Checkout` or `MixedCheckout`.
    pub scenario: Scenario,
    /// Its workload.
    pub workload: CheckoutWorkload,
    /// Whether every attempt was made (not cut off by `max_secs`).
    pub completed: bool,
    /// The measurements.
    pub summary: Summary,
    /// The invariants checked after the run.
    pub invariants: Invariants,
    /// The redemption service's resident memory under the load, where measured.
    pub rss: Option<RssReading>,
}

impl CheckoutReport {
    /// Approved (durable) redemptions per second.
    pub fn redemptions_per_sec(&self) -> u64 {
        self.summary.successes_per_sec
    }
}

/// A claimed voucher: its token and id.
#[derive(Debug, Clone)]
struct Claimed {
    token: VoucherToken,
    id: VoucherId,
}

/// The world the checkout runs in: its campaigns, claimed vouchers not yet planned, and the
/// terminals.
pub struct Setup {
    program: i64,
    catering: i64,
    furnishing: i64,
    threshold: Vec<Claimed>,
    entitlements: Vec<Claimed>,
    /// Terminals of catering merchants.
    catering_terminals: Vec<usize>,
    /// Terminals of home-furnishing merchants.
    furnishing_terminals: Vec<usize>,
    /// Terminals per merchant (to send a duplicate to another merchant).
    per_merchant: usize,
    terminals: Arc<Vec<Terminal>>,
    codes: Arc<DynamicCodes>,
}

impl Setup {
    /// The campaigns (threshold, home-furnishing).
    pub fn campaigns(&self) -> (i64, i64) {
        (self.catering, self.furnishing)
    }
}

/// The dynamic-code generator of the services (the secrets directory's dynamic-code secret,
/// loaded the platform's way).
///
/// # Errors
/// The file is missing or not a valid secret.
pub fn load_dynamic_codes(secrets_dir: &std::path::Path, step_secs: u32) -> Result<DynamicCodes> {
    use secrecy::ExposeSecret as _;
    let secret = voucher_platform::secrets::SecretsDir::new(secrets_dir).dynamic_code_secret()?;
    DynamicCodes::new(secret.expose_secret(), step_secs).context("dynamic-code settings")
}

async fn create_program(api: &IssuanceClient, t: &RushTarget, pool: i64) -> Result<i64> {
    let r = api
        .post_json("/v1/admin/programs", Auth::ApiKey(&t.province_key), &json!({
            "name": "benchmark checkout program", "funder_place": PROVINCE, "province_ratio_bp": 5000,
            "pool": pool, "refund_policy": "restore"
        }))
        .await?;
    if !r.status.is_success() {
        bail!(
            "creating the checkout program failed: {} {}",
            r.status,
            r.body
        );
    }
    r.body
        .get("id")
        .and_then(Value::as_i64)
        .context("program without id")
}

async fn create_campaigns(
    api: &IssuanceClient,
    t: &RushTarget,
    threshold: usize,
    entitlements: usize,
) -> Result<(i64, i64, i64)> {
    let stock = |n: usize| u32::try_from(n.max(1)).unwrap_or(u32::MAX);
    let program = create_program(api, t, 1_000_000_000_000).await?;
    let common = |name: &str, category: &str, rule: Value, n: usize, budget: i64| {
        json!({
            "program_id": program, "name": name, "owner_place": CITY, "category": category, "rule": rule,
            "stock": stock(n), "per_person_limit": 1,
            "rounds": [{"round_no": 1, "starts_at": t.now, "quantity": stock(n)}],
            "validity": {"days_after_claim": 7}, "budget": budget,
            "eligibility": {"places": [CITY], "min_real_name_level": 2}, "distribution": "claim"
        })
    };
    let mut ids = Vec::new();
    let specs = [
        common(
            "benchmark checkout 满100减20",
            "catering",
            json!({"type": "threshold", "min_spend": THRESHOLD_MIN_FEN, "off": THRESHOLD_OFF_FEN}),
            threshold,
            // Twice what the vouchers can take: the bench measures checkouts, not the
            // end of a budget (the budget race has its own test in the service).
            i64::from(stock(threshold)) * THRESHOLD_OFF_FEN * 2,
        ),
        common(
            "benchmark checkout 家居 10% 立减",
            "home_furnishing",
            json!({"type": "percent", "rate_bp": 1000, "per_person_cap": FURNISHING_CAP_FEN}),
            entitlements,
            i64::from(stock(entitlements)) * FURNISHING_CAP_FEN,
        ),
    ];
    for spec in specs {
        let r = api
            .post_json("/v1/admin/campaigns", Auth::ApiKey(&t.city_key), &spec)
            .await?;
        if !r.status.is_success() {
            bail!(
                "creating a checkout campaign failed: {} {}",
                r.status,
                r.body
            );
        }
        ids.push(
            r.body
                .get("id")
                .and_then(Value::as_i64)
                .context("campaign without id")?,
        );
    }
    Ok((program, ids[0], ids[1]))
}

/// Residents `1..=count` claim one voucher of `campaign` each; returns the vouchers in order.
async fn claim_all(
    api: &IssuanceClient,
    tokens: &[residents::Resident],
    campaign: i64,
) -> Result<Vec<Claimed>> {
    let answers: Vec<Result<Reply>> = stream::iter(tokens)
        .map(|r| api.claim(&r.token, campaign, uuid::Uuid::new_v4()))
        .buffered(256)
        .collect()
        .await;
    answers
        .into_iter()
        .map(|a| {
            let r = a?;
            if r.status.as_u16() != 201 {
                bail!("a checkout claim was refused: {} {}", r.status, r.body);
            }
            let token = r
                .body
                .get("token")
                .and_then(Value::as_str)
                .context("claim without token")?;
            let id = r
                .body
                .get("voucher_id")
                .and_then(Value::as_str)
                .context("claim without voucher id")?;
            Ok(Claimed {
                token: VoucherToken::from_text(token.to_owned()),
                id: VoucherId(uuid::Uuid::parse_str(id).context("voucher id")?),
            })
        })
        .collect()
}

fn credit_code(n: u64) -> Result<String> {
    let head = format!("91140500MB{:07}", n % 10_000_000);
    let check = voucher_core::CreditCode::check_char(&head).context("credit code")?;
    Ok(format!("{head}{check}"))
}

/// Creates the campaigns, claims `threshold` + `entitlements` vouchers over HTTP, waits for
/// the outbox, registers the merchants and terminals of `w` (its `merchants`, `terminals`).
///
/// # Errors
/// A service refused or failed, or the outbox did not drain.
pub async fn prepare(
    t: &CheckoutTarget,
    threshold: usize,
    entitlements: usize,
    w: &CheckoutWorkload,
) -> Result<Setup> {
    let it = &t.issuance;
    let api = IssuanceClient::new(&it.base_url, 256)?;
    api.wait_ready(Duration::from_secs(60)).await?;
    IssuanceClient::new(&t.redemption_url, 1)?
        .wait_ready(Duration::from_secs(60))
        .await
        .context("the redemption service is not ready")?;
    let (program, catering, furnishing) =
        create_campaigns(&api, it, threshold, entitlements).await?;
    let home = PlaceCode::try_from(CITY).context("place")?;
    let people = residents::mint_bench(&it.idp_key, threshold.max(entitlements), home, it.now)?;
    let (threshold_vouchers, entitlement_vouchers) = tokio::try_join!(
        claim_all(&api, people.get(..threshold).unwrap_or(&people), catering),
        claim_all(
            &api,
            people.get(..entitlements).unwrap_or(&people),
            furnishing
        ),
    )?;
    drop(people);
    let hot = voucher_store::HotStore::connect(&it.redis_url, &it.redis_prefix)
        .await
        .context("connecting to redis")?;
    wait_drained(&hot, CampaignId(catering), it.drain_timeout).await?;
    wait_drained(&hot, CampaignId(furnishing), it.drain_timeout).await?;

    let merchants = w.merchants.max(2);
    let per_merchant = w.terminals.div_ceil(merchants).max(1);
    let furnishing_merchants = (merchants / 4).max(1);
    let mut terminals = Vec::new();
    let (mut catering_terminals, mut furnishing_terminals) = (Vec::new(), Vec::new());
    for k in 0..merchants {
        let home_furnishing = k < furnishing_merchants;
        let id = format!("bench-{catering}-{k:03}");
        let code = credit_code(
            u64::try_from(catering).unwrap_or(0) * 1000 + u64::try_from(k).unwrap_or(0),
        )?;
        let spec = MerchantSpec {
            id: &id,
            name: &id,
            credit_code: &code,
            category: if home_furnishing {
                "home_furnishing"
            } else {
                "catering"
            },
            city: CITY,
            county: None,
        };
        let first = terminal::register(&t.redemption_url, &it.city_key, &spec, &[program]).await?;
        let mut mine = vec![first.clone()];
        for _ in 1..per_merchant {
            mine.push(first.another(&it.city_key).await?);
        }
        for term in mine {
            let list = if home_furnishing {
                &mut furnishing_terminals
            } else {
                &mut catering_terminals
            };
            list.push(terminals.len());
            terminals.push(term);
        }
    }
    Ok(Setup {
        program,
        catering,
        furnishing,
        threshold: threshold_vouchers,
        entitlements: entitlement_vouchers,
        catering_terminals,
        furnishing_terminals,
        per_merchant,
        terminals: Arc::new(terminals),
        codes: Arc::new(load_dynamic_codes(&t.secrets_dir, t.code_step_secs)?),
    })
}

/// One request of the run.
struct Attempt {
    voucher: Claimed,
    terminal: usize,
    amount: i64,
    order_ref: String,
}

/// The attempts of `w`, taking its vouchers from `setup` (so a second run takes others):
/// threshold vouchers in order with their duplicates right behind them, the entitlements'
/// purchase pairs spread evenly among them.
fn plan(setup: &mut Setup, w: &CheckoutWorkload, prefix: &str) -> Result<Vec<Attempt>> {
    if setup.threshold.len() < w.vouchers || setup.entitlements.len() < w.entitlements {
        bail!("the setup has too few vouchers for the workload");
    }
    let threshold: Vec<Claimed> = setup.threshold.drain(..w.vouchers).collect();
    let entitlements: Vec<Claimed> = setup.entitlements.drain(..w.entitlements).collect();
    let (cat, furn) = (&setup.catering_terminals, &setup.furnishing_terminals);
    if cat.is_empty() || furn.is_empty() {
        bail!("the setup has no terminals of one of the categories");
    }
    let mut seq = 0usize;
    let mut order_ref = || {
        seq += 1;
        format!("{prefix}-{seq:07}")
    };
    let mut attempts = Vec::with_capacity(w.attempts());
    let mut next_entitlement = entitlements.into_iter().enumerate().peekable();
    for (i, v) in threshold.into_iter().enumerate() {
        let step = i64::try_from(i % 50).unwrap_or(0);
        let amount = THRESHOLD_MIN_FEN + step * 1_000;
        let here = i % cat.len();
        if w.duplicate_every > 0 && i % w.duplicate_every == 0 {
            // Another merchant's terminal, at the same moment.
            let there = (i + setup.per_merchant) % cat.len();
            attempts.push(Attempt {
                voucher: v.clone(),
                terminal: cat[there],
                amount,
                order_ref: order_ref(),
            });
        }
        attempts.push(Attempt {
            voucher: v,
            terminal: cat[here],
            amount,
            order_ref: order_ref(),
        });
        while let Some((j, e)) =
            next_entitlement.next_if(|(j, _)| j * w.vouchers.max(1) <= i * w.entitlements)
        {
            for k in 0..2 {
                let t = furn[(2 * j + k) % furn.len()];
                attempts.push(Attempt {
                    voucher: e.clone(),
                    terminal: t,
                    amount: FURNISHING_ORDER_FEN,
                    order_ref: order_ref(),
                });
            }
        }
    }
    for (j, e) in next_entitlement {
        for k in 0..2 {
            let t = furn[(2 * j + k) % furn.len()];
            attempts.push(Attempt {
                voucher: e.clone(),
                terminal: t,
                amount: FURNISHING_ORDER_FEN,
                order_ref: order_ref(),
            });
        }
    }
    Ok(attempts)
}

/// A terminal's answer turned into an outcome.
fn outcome(reply: Result<Reply>) -> Outcome {
    let Ok(r) = reply else {
        return Outcome::Error("TRANSPORT_ERROR".to_owned());
    };
    if r.status.as_u16() != 200 {
        return Outcome::Error(
            r.code()
                .map_or_else(|| format!("HTTP_{}", r.status.as_u16()), str::to_owned),
        );
    }
    match r.body.get("outcome").and_then(Value::as_str) {
        Some("approved") => match r.body.get("notice").and_then(Value::as_str) {
            Some("CAP_EXHAUSTED") => Outcome::Success(REDEEMED_CAPPED),
            Some("BUDGET_EXHAUSTED") => Outcome::Success(REDEEMED_BUDGET),
            _ => Outcome::Success(REDEEMED),
        },
        Some("declined") => match r.body.get("reason").and_then(Value::as_str) {
            Some(ALREADY_REDEEMED) => Outcome::Refused(ALREADY_REDEEMED.to_owned()),
            Some(other) => Outcome::Error(format!("declined {other}")),
            None => Outcome::Error("declined without reason".to_owned()),
        },
        _ => Outcome::Error("UNEXPECTED_BODY".to_owned()),
    }
}

/// Drives `w` over vouchers taken from `setup`; order references start with `prefix`.
///
/// # Errors
/// The setup has too few vouchers or terminals for `w`.
pub async fn drive_checkout(
    t: &CheckoutTarget,
    setup: &mut Setup,
    w: &CheckoutWorkload,
    prefix: &str,
) -> Result<Summary> {
    let attempts = plan(setup, w, prefix)?;
    let (terminals, codes, clock) = (
        setup.terminals.clone(),
        setup.codes.clone(),
        t.clock.clone(),
    );
    Ok(drive(attempts, w.pace, w.deadline(), move |a: &Attempt| {
        let terminal = terminals.get(a.terminal).cloned();
        // Computed at the moment of sending, as the phone shows it: always current.
        let code = codes.code(&a.voucher.token, a.voucher.id, clock.now()).code;
        let (amount, order_ref) = (a.amount, a.order_ref.clone());
        async move {
            match terminal {
                Some(term) => outcome(term.redeem(&code, amount, &order_ref).await),
                None => Outcome::Error("NO_TERMINAL".to_owned()),
            }
        }
    })
    .await)
}

/// Checks the run's invariants in PostgreSQL (see the module documentation).
///
/// # Errors
/// The database could not be read.
pub async fn verify(
    t: &CheckoutTarget,
    setup: &Setup,
    w: &CheckoutWorkload,
    prefix: &str,
    summary: &Summary,
) -> Result<Invariants> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&t.issuance.pg_url)
        .await
        .context("connecting to the services' database")?;
    let campaigns = [setup.catering, setup.furnishing];
    let mut inv = Invariants::default();
    let like = format!("{prefix}-%");

    let (rows, threshold_rows): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE single_use) FROM redemptions
         WHERE campaign_id = ANY($1) AND order_ref LIKE $2 AND status = 'approved'",
    )
    .bind(&campaigns[..])
    .bind(&like)
    .fetch_one(&pool)
    .await
    .context("counting redemptions")?;
    inv.equal(
        "approved answers = redemption rows (postgres)",
        summary.successes,
        u64::try_from(rows).unwrap_or(0),
    );

    let doubles: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT voucher_id FROM redemptions
         WHERE campaign_id = ANY($1) AND single_use AND status IN ('approved', 'held', 'captured')
         GROUP BY voucher_id HAVING count(*) > 1) AS twice",
    )
    .bind(&campaigns[..])
    .fetch_one(&pool)
    .await
    .context("looking for double redemptions")?;
    inv.equal("single-use vouchers redeemed more than once", 0, doubles);

    let (over_cap, mismatched): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE coalesce(r.granted, 0) > e.cap_fen),
                count(*) FILTER (WHERE coalesce(r.granted, 0) <> e.used_fen)
         FROM entitlements e
         LEFT JOIN (SELECT person_id, sum(discount_fen - reversed_fen) AS granted FROM redemptions
                    WHERE campaign_id = $1 AND status IN ('approved', 'held', 'captured') GROUP BY person_id) r
                ON r.person_id = e.person_id
         WHERE e.campaign_id = $1",
    )
    .bind(setup.furnishing)
    .fetch_one(&pool)
    .await
    .context("checking the entitlements")?;
    inv.equal(
        "persons whose discounts exceed the 2,000-yuan cap",
        0,
        over_cap,
    );
    inv.equal("entitlements whose use ≠ their discounts", 0, mismatched);

    let budgets: Vec<(i64, i64, i64, Option<i64>)> = sqlx::query_as(
        "SELECT c.id, c.budget_fen,
                coalesce((SELECT sum(discount_fen - reversed_fen) FROM redemptions r
                          WHERE r.campaign_id = c.id AND r.status IN ('approved', 'held', 'captured')), 0)::int8,
                (SELECT sum(remaining_fen) FROM campaign_budget_buckets b WHERE b.campaign_id = c.id)::int8
         FROM campaigns c WHERE c.id = ANY($1) ORDER BY c.id",
    )
    .bind(&campaigns[..])
    .fetch_all(&pool)
    .await
    .context("checking the budgets")?;
    for (id, budget, granted, remaining) in budgets {
        inv.holds(
            &format!("Σ discounts of campaign {id} ≤ its budget"),
            granted <= budget,
            &format!("≤ {budget}"),
            granted.to_string(),
        );
        if let Some(remaining) = remaining {
            inv.equal(
                &format!("campaign {id}: budget buckets + discounts = budget"),
                budget,
                remaining + granted,
            );
        }
    }
    pool.close().await;

    let count = |label: &str| summary.outcomes.get(label).copied().unwrap_or(0);
    let unexpected: Vec<String> = summary
        .outcomes
        .iter()
        .filter(|(k, _)| {
            ![REDEEMED, REDEEMED_CAPPED, REDEEMED_BUDGET, ALREADY_REDEEMED].contains(&k.as_str())
        })
        .map(|(k, v)| format!("{k}×{v}"))
        .collect();
    inv.holds(
        "no outcome other than approvals and VOUCHER_ALREADY_REDEEMED",
        unexpected.is_empty(),
        "none",
        if unexpected.is_empty() {
            "none".to_owned()
        } else {
            unexpected.join(", ")
        },
    );
    let refused = count(ALREADY_REDEEMED);
    let duplicates = u64::try_from(w.duplicates()).unwrap_or(u64::MAX);
    inv.holds(
        "VOUCHER_ALREADY_REDEEMED only for duplicate presentations",
        refused <= duplicates,
        &format!("≤ {duplicates}"),
        refused.to_string(),
    );
    if summary.requests == u64::try_from(w.attempts()).unwrap_or(u64::MAX) {
        inv.equal(
            "threshold vouchers redeemed = vouchers presented",
            u64::try_from(w.vouchers).unwrap_or(0),
            u64::try_from(threshold_rows).unwrap_or(0),
        );
        inv.equal(
            "double-spend refusals = duplicate presentations",
            duplicates,
            refused,
        );
    }
    Ok(inv)
}

/// Runs a checkout over vouchers taken from `setup` and checks the invariants.
///
/// # Errors
/// See [`drive_checkout`] and [`verify`].
pub async fn run_prepared(
    t: &CheckoutTarget,
    setup: &mut Setup,
    w: &CheckoutWorkload,
    prefix: &str,
    scenario: Scenario,
) -> Result<CheckoutReport> {
    let sampler = t.redemption_pid.map(RssSampler::start);
    let summary = drive_checkout(t, setup, w, prefix).await?;
    let rss = match sampler {
        Some(s) => Some(s.finish().await?),
        None => None,
    };
    let invariants = verify(t, setup, w, prefix, &summary).await?;
    let completed = summary.requests == u64::try_from(w.attempts()).unwrap_or(u64::MAX);
    Ok(CheckoutReport {
        scenario,
        workload: *w,
        completed,
        summary,
        invariants,
        rss,
    })
}

/// Sets up and runs a checkout on its own.
///
/// # Errors
/// Setting up failed or the database could not be read. A broken invariant is not an error
/// here: it is in the report.
pub async fn run(t: &CheckoutTarget, w: &CheckoutWorkload) -> Result<CheckoutReport> {
    let mut setup = prepare(t, w.vouchers, w.entitlements, w).await?;
    run_prepared(t, &mut setup, w, "ck", Scenario::Checkout).await
}

impl Setup {
    /// The program both campaigns belong to.
    pub fn program(&self) -> i64 {
        self.program
    }
}
