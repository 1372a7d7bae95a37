//! Defence in depth at the record (issue 13), over real HTTP against the real redemption
//! service and real PostgreSQL.
//!
//! A signed voucher token is proof of issuance, so redemption inserts a voucher the record
//! does not hold yet from its token. After a Redis data loss a person may hold the token of a
//! claim that never reached PostgreSQL and claim again: the second line of defence is that
//! redemption refuses to insert a voucher that would take the person beyond the campaign's
//! per-person limit (`PERSON_LIMIT_EXCEEDED`, nothing written), serialised per (campaign,
//! person) so that concurrent presentations at several terminals cannot all pass.
//!
//! And the idempotency retry race: a retry with the same `Idempotency-Key` racing the first
//! request's commit gets the first answer (or `IN_FLIGHT` while the first is deciding),
//! never another decision.

use crate::redemption_support::{place, spawn, t0, Term, TestApp};
use chrono::Duration;
use futures::future::join_all;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;
use voucher_core::token::VoucherClaims;
use voucher_core::{
    BasisPoints, Campaign, Category, Distribution, Eligibility, Fen, NewCampaign, RefundPolicy,
    Round, Rule, Validity,
};

fn big() -> Fen {
    Fen::from_yuan(100_000_000).unwrap()
}

/// A Jincheng campaign of `rule` whose per-person limit is `limit`.
async fn campaign_with_limit(
    app: &TestApp,
    category: Category,
    rule: Rule,
    limit: u32,
) -> Campaign {
    let program = app.program(RefundPolicy::Restore).await;
    let spec = NewCampaign {
        program_id: program,
        name: "limited campaign".into(),
        owner_place: place(140_500),
        category,
        rule,
        stock: 1_000,
        per_person_limit: limit,
        rounds: vec![Round {
            round_no: 1,
            starts_at: t0() - Duration::days(1),
            quantity: 1_000,
            mode: voucher_core::RoundMode::Rush,
        }],
        validity: Validity {
            days_after_claim: Some(7),
            ends_at: None,
        },
        budget: big(),
        eligibility: Eligibility {
            places: vec![],
            min_real_name_level: 0,
        },
        distribution: Distribution::Claim,
    };
    voucher_store::pg::campaigns::create(&app.db.pool, &spec)
        .await
        .unwrap()
}

/// 满100减20 catering with a per-person limit.
async fn catering(app: &TestApp, limit: u32) -> Campaign {
    let rule = Rule::Threshold {
        min_spend: Fen::from_yuan(100).unwrap(),
        off: Fen::from_yuan(20).unwrap(),
    };
    campaign_with_limit(app, Category::Catering, rule, limit).await
}

/// Writes a voucher as the persister does (source `rush`, its own claim id).
async fn persist(app: &TestApp, v: &VoucherClaims) {
    sqlx::query(
        "INSERT INTO vouchers (voucher_id, campaign_id, person_id, claim_id, round_no, source, status,
                               claimed_at, valid_from, valid_until)
         VALUES ($1, $2, $3, $4, 1, 'rush', 'issued', $5, $5, $6)",
    )
    .bind(v.voucher_id.0)
    .bind(v.campaign_id.0)
    .bind(v.person_id.as_str())
    .bind(Uuid::new_v4())
    .bind(v.valid_from)
    .bind(v.valid_until)
    .execute(&app.db.pool)
    .await
    .unwrap();
}

/// The person's vouchers of the campaign in the record.
async fn held(app: &TestApp, campaign: &Campaign, person: &str) -> i64 {
    app.count(&format!(
        "vouchers WHERE campaign_id = {} AND person_id = '{person}'",
        campaign.id.0
    ))
    .await
}

async fn declined_metric(app: &TestApp, reason: &str) -> String {
    let metrics = app.metrics().await;
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("redemption_decisions_total")
                && l.contains("outcome=\"declined\"")
                && l.contains(&format!("reason=\"{reason}\""))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_token_only_voucher_beyond_the_person_limit_is_declined_and_writes_nothing() {
    let app = spawn().await;
    let campaign = catering(&app, 1).await;
    let t = app
        .merchant("rd1", Category::Catering, None, &[campaign.spec.program_id])
        .await;
    // Two valid signed vouchers of one person, neither persisted (the second claim after
    // Redis forgot the first).
    let first = app.voucher(&campaign, "twice");
    let second = app.voucher(&campaign, "twice");

    let (s, a) = app.redeem(&t, &app.code(&first), 150_00).await;
    assert_eq!((s, &a["outcome"]), (200, &json!("approved")), "{a}");
    let before = app.written().await;
    let budget = app.budget_left(campaign.id).await;

    let (s, d) = app.redeem(&t, &app.code(&second), 150_00).await;

    assert_eq!(s, 200, "{d}");
    assert_eq!(d["outcome"], "declined", "{d}");
    assert_eq!(d["reason"], "PERSON_LIMIT_EXCEEDED", "{d}");
    assert!(d["message"].as_str().is_some_and(|m| !m.is_empty()), "{d}");
    assert_eq!(app.written().await, before, "a decline writes nothing");
    assert_eq!(app.budget_left(campaign.id).await, budget);
    assert_eq!(held(&app, &campaign, "twice").await, 1);
    let voucher_rows = app
        .count(&format!(
            "vouchers WHERE voucher_id = '{}'",
            second.voucher_id.0
        ))
        .await;
    assert_eq!(voucher_rows, 0, "the refused voucher is not in the record");
    let counted = declined_metric(&app, "PERSON_LIMIT_EXCEEDED").await;
    assert!(counted.ends_with(" 1"), "{counted}");

    // Declined again on a retry (a decline releases the idempotency key and keeps nothing),
    // and as a hold.
    let (_, again) = app.redeem(&t, &app.code(&second), 150_00).await;
    assert_eq!(again["reason"], "PERSON_LIMIT_EXCEEDED", "{again}");
    let (_, hold) = app
        .checkout(&t, "/v1/authorizations", &app.code(&second), 150_00)
        .await;
    assert_eq!(hold["reason"], "PERSON_LIMIT_EXCEEDED", "{hold}");
    assert_eq!(app.written().await, before);
    // The first voucher is the record's now: presented again it is simply spent.
    let (_, spent) = app.redeem(&t, &app.code(&first), 150_00).await;
    assert_eq!(spent["reason"], "VOUCHER_ALREADY_REDEEMED", "{spent}");
    // Another person is not concerned.
    let other = app.voucher(&campaign, "someone-else");
    let (_, ok) = app.redeem(&t, &app.code(&other), 150_00).await;
    assert_eq!(ok["outcome"], "approved", "{ok}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_only_voucher_of_a_person_whose_limit_the_record_holds_is_declined_but_the_recorded_one_is_spent(
) {
    let app = spawn().await;
    let campaign = catering(&app, 1).await;
    let t = app
        .merchant("rd2", Category::Catering, None, &[campaign.spec.program_id])
        .await;
    let recorded = app.voucher(&campaign, "kept");
    persist(&app, &recorded).await;
    let token_only = app.voucher(&campaign, "kept");

    let (_, d) = app.redeem(&t, &app.code(&token_only), 150_00).await;
    assert_eq!(d["reason"], "PERSON_LIMIT_EXCEEDED", "{d}");
    assert_eq!(app.count("redemptions").await, 0);

    // The voucher the record holds takes the normal path and is unaffected.
    let (_, a) = app.redeem(&t, &app.code(&recorded), 150_00).await;
    assert_eq!(a["outcome"], "approved", "{a}");
    assert_eq!(a["discount_fen"], 20_00, "{a}");
    assert_eq!(held(&app, &campaign, "kept").await, 1);
    assert_eq!(
        app.count("vouchers WHERE status = 'redeemed'").await,
        1,
        "only the recorded voucher is spent"
    );

    // An expired voucher still counts against the limit (the claim script's person count
    // is never given back, not even when the stock is recycled).
    let lapsed = catering(&app, 1).await;
    let t2 = app
        .merchant("rd2b", Category::Catering, None, &[lapsed.spec.program_id])
        .await;
    let old = app.voucher(&lapsed, "lapsed");
    persist(&app, &old).await;
    sqlx::query(
        "UPDATE vouchers SET status = 'expired', expired_at = now(), recycled_at = now()
         WHERE voucher_id = $1",
    )
    .bind(old.voucher_id.0)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let (_, d) = app
        .redeem(&t2, &app.code(&app.voucher(&lapsed, "lapsed")), 150_00)
        .await;
    assert_eq!(d["reason"], "PERSON_LIMIT_EXCEEDED", "{d}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_token_only_entitlement_voucher_is_declined_without_touching_the_entitlement() {
    let app = spawn().await;
    let rule = Rule::Percent {
        rate_bp: BasisPoints::try_from(1000).unwrap(),
        per_person_cap: Fen::from_yuan(2000).unwrap(),
    };
    let campaign = campaign_with_limit(&app, Category::HomeFurnishing, rule, 1).await;
    let t = app
        .merchant(
            "rd3",
            Category::HomeFurnishing,
            None,
            &[campaign.spec.program_id],
        )
        .await;
    let first = app.voucher(&campaign, "sofa");
    let (_, a) = app.redeem(&t, &app.code(&first), 1_000_00).await;
    assert_eq!(a["outcome"], "approved", "{a}");
    assert_eq!(a["discount_fen"], 100_00, "{a}");
    let before = app.written().await;

    let (_, d) = app
        .redeem(&t, &app.code(&app.voucher(&campaign, "sofa")), 1_000_00)
        .await;

    assert_eq!(d["reason"], "PERSON_LIMIT_EXCEEDED", "{d}");
    assert_eq!(app.written().await, before);
    let used: i64 = sqlx::query_scalar("SELECT used_fen FROM entitlements WHERE campaign_id = $1")
        .bind(campaign.id.0)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(used, 100_00);
    // The entitlement voucher the record now holds is used again normally.
    let (_, again) = app.redeem(&t, &app.code(&first), 1_000_00).await;
    assert_eq!(again["outcome"], "approved", "{again}");
    app.stop().await;
}

/// `n` distinct token-only vouchers of one person (limit `k`), each presented at 4
/// terminals at once: 32 concurrent presentations.
async fn race(
    app: &TestApp,
    terminals: &[Term],
    campaign: &Campaign,
    person: &str,
    n: usize,
) -> Vec<(u16, Value)> {
    let vouchers: Vec<VoucherClaims> = (0..n).map(|_| app.voucher(campaign, person)).collect();
    let codes: Vec<String> = vouchers.iter().map(|v| app.code(v)).collect();
    let presentations = (0..32).map(|i| {
        let code = codes[i % n].clone();
        let term = &terminals[i % terminals.len()];
        async move { app.redeem(term, &code, 150_00).await }
    });
    join_all(presentations).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_concurrent_presentations_of_one_persons_token_only_vouchers_approve_exactly_the_limit(
) {
    let app = spawn().await;
    let limit = 3;
    let campaign = catering(&app, limit).await;
    let mut terminals = Vec::new();
    for m in 0..4 {
        let id = format!("rr{m}");
        terminals.push(
            app.merchant(&id, Category::Catering, None, &[campaign.spec.program_id])
                .await,
        );
        terminals.push(app.terminal(&id).await);
    }
    for round in 0..3 {
        let person = format!("racer{round}");
        let answers = race(&app, &terminals, &campaign, &person, 8).await;

        let approved: BTreeSet<String> = answers
            .iter()
            .filter(|(_, b)| b["outcome"] == "approved")
            .map(|(_, b)| b["voucher_id"].as_str().unwrap_or_default().to_owned())
            .collect();
        let approvals = answers
            .iter()
            .filter(|(_, b)| b["outcome"] == "approved")
            .count();
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for (s, b) in &answers {
            assert_eq!(*s, 200, "{b}");
            if b["outcome"] == "declined" {
                *reasons
                    .entry(b["reason"].as_str().unwrap().to_owned())
                    .or_default() += 1;
            }
        }
        assert_eq!(approvals, limit as usize, "{answers:?}");
        assert_eq!(
            approved.len(),
            limit as usize,
            "distinct vouchers: {answers:?}"
        );
        assert!(
            reasons
                .keys()
                .all(|r| r == "PERSON_LIMIT_EXCEEDED" || r == "VOUCHER_ALREADY_REDEEMED"),
            "{reasons:?}"
        );
        assert!(reasons.contains_key("PERSON_LIMIT_EXCEEDED"), "{reasons:?}");
        assert_eq!(held(&app, &campaign, &person).await, i64::from(limit));
        assert_eq!(
            app.count(&format!("redemptions WHERE person_id = '{person}'"))
                .await,
            i64::from(limit)
        );
    }
    assert_eq!(
        app.budget_left(campaign.id).await,
        big().as_i64() - 3 * i64::from(limit) * 20_00
    );
    app.stop().await;
}

/// Rounds of the idempotency race. Before the fix about one round in 300 (5 ms between
/// retries) answered `ORDER_REF_USED`; each round is cheap, so the test runs many.
const ATTEMPTS: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_with_one_idempotency_key_all_get_the_first_approval() {
    let app = spawn().await;
    let campaign = catering(&app, 5).await;
    let furnishing = campaign_with_limit(
        &app,
        Category::HomeFurnishing,
        Rule::Percent {
            rate_bp: BasisPoints::try_from(1000).unwrap(),
            per_person_cap: Fen::from_yuan(2000).unwrap(),
        },
        5,
    )
    .await;
    let t = app
        .merchant(
            "idem",
            Category::Catering,
            None,
            &[campaign.spec.program_id],
        )
        .await;
    let f = app
        .merchant(
            "idem-f",
            Category::HomeFurnishing,
            None,
            &[furnishing.spec.program_id],
        )
        .await;
    let mut in_flight = 0;
    for attempt in 0..ATTEMPTS {
        // Alternate a threshold voucher (the one-statement decision) and a percentage one.
        let (term, c, amount) = if attempt % 2 == 0 {
            (&t, &campaign, 150_00)
        } else {
            (&f, &furnishing, 1_000_00)
        };
        let voucher = app.voucher(c, &format!("retry{attempt}"));
        let body = json!({
            "code": app.code(&voucher),
            "order_amount_fen": amount,
            "order_ref": format!("order-{attempt}"),
        });
        let key = format!("key-{attempt}");
        // 16 identical requests at once; each, like a till, retries IN_FLIGHT with the same
        // key and body until it gets a final answer.
        let requests = (0..16).map(|_| {
            let (app, body, key) = (&app, body.clone(), key.clone());
            async move {
                let mut retries = 0;
                loop {
                    let (s, b) = app
                        .call(
                            term,
                            "POST",
                            "/v1/redemptions",
                            Some(body.clone()),
                            Some(&key),
                        )
                        .await;
                    if s == 409 && b["code"] == "IN_FLIGHT" {
                        // At once: a retry's read of the key landing right on the first one's
                        // commit is the race this test is after.
                        retries += 1;
                        continue;
                    }
                    return (s, b, retries);
                }
            }
        });
        let answers = join_all(requests).await;

        in_flight += answers.iter().map(|(_, _, r)| r).sum::<usize>();
        let ids: BTreeSet<String> = answers
            .iter()
            .map(|(s, b, _)| {
                assert_eq!(*s, 200, "attempt {attempt}: {b}");
                assert_eq!(b["outcome"], "approved", "attempt {attempt}: {b}");
                b["redemption_id"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(
            ids.len(),
            1,
            "attempt {attempt}: one approval for all: {ids:?}"
        );
        assert_eq!(
            app.count(&format!("redemptions WHERE order_ref = 'order-{attempt}'"))
                .await,
            1,
            "attempt {attempt}"
        );
    }
    eprintln!("IN_FLIGHT answers retried over {ATTEMPTS} × 16 requests: {in_flight}");
    app.stop().await;
}
