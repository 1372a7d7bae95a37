//! The record in PostgreSQL: programs, campaigns and rounds map to the domain types and
//! back; campaign lists are scoped by place; rounds append in order; vouchers are read back
//! as the persister wrote them; merchant and terminal writes report the constraint they ran
//! into by name, and every constraint the store maps by name exists in the schema.

#![allow(clippy::unwrap_used)]

use crate::store_support::{campaign_spec, claimed, env, jincheng, new_program, person, t0, Shape};
use chrono::Duration;
use system_tests::fresh_db;
use uuid::Uuid;
use voucher_core::token::VoucherClaims;
use voucher_core::{
    CampaignId, CampaignStatus, MerchantId, PlaceCode, ProgramId, RedemptionId, Round, TerminalId,
    TerminalKeyId, VoucherId,
};
use voucher_store::pg::{
    budget, campaigns, merchants, programs, redemptions, terminals, token_vouchers, vouchers,
};
use voucher_store::{Conflict, StoreError};

#[tokio::test]
async fn programs_and_campaigns_read_back_as_written() {
    let db = fresh_db().await;
    let program = new_program(&db.pool).await;
    assert_eq!(
        programs::get(&db.pool, program.id).await.unwrap(),
        Some(program.clone())
    );
    assert_eq!(
        programs::list(&db.pool).await.unwrap(),
        vec![program.clone()]
    );
    assert_eq!(
        programs::get(&db.pool, ProgramId(program.id.0 + 1))
            .await
            .unwrap(),
        None
    );

    let shape = Shape::rush(100, 2);
    let campaign = campaigns::create(&db.pool, &campaign_spec(&program, jincheng(), &shape))
        .await
        .unwrap();
    assert_eq!(campaign.status, CampaignStatus::Active);
    assert_eq!(
        campaigns::get(&db.pool, campaign.id).await.unwrap(),
        Some(campaign.clone())
    );

    let mut orphan = campaign_spec(&program, jincheng(), &shape);
    orphan.program_id = ProgramId(program.id.0 + 99);
    assert!(matches!(
        campaigns::create(&db.pool, &orphan).await,
        Err(StoreError::NotFound)
    ));

    let paused = campaigns::set_status(&db.pool, campaign.id, CampaignStatus::Paused)
        .await
        .unwrap();
    assert_eq!(paused.status, CampaignStatus::Paused);
    assert!(matches!(
        campaigns::set_status(
            &db.pool,
            CampaignId(campaign.id.0 + 99),
            CampaignStatus::Paused
        )
        .await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn campaign_lists_are_scoped_to_the_place() {
    let db = fresh_db().await;
    let program = new_program(&db.pool).await;
    let shape = Shape::rush(10, 1);
    let yangcheng = PlaceCode::parse("140522").unwrap();
    let taiyuan = PlaceCode::parse("140100").unwrap();
    let mut ids = Vec::new();
    for place in [jincheng(), yangcheng, taiyuan] {
        ids.push(
            campaigns::create(&db.pool, &campaign_spec(&program, place, &shape))
                .await
                .unwrap()
                .id,
        );
    }
    let of = |list: Vec<voucher_core::Campaign>| list.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(of(campaigns::list(&db.pool, None).await.unwrap()), ids);
    assert_eq!(
        of(
            campaigns::list(&db.pool, Some(PlaceCode::parse("140000").unwrap()))
                .await
                .unwrap()
        ),
        ids
    );
    assert_eq!(
        of(campaigns::list(&db.pool, Some(jincheng())).await.unwrap()),
        ids[..2].to_vec(),
        "a city sees its counties"
    );
    assert_eq!(
        of(campaigns::list(&db.pool, Some(yangcheng)).await.unwrap()),
        ids[1..2].to_vec()
    );
    assert_eq!(
        of(campaigns::list(&db.pool, Some(taiyuan)).await.unwrap()),
        ids[2..].to_vec()
    );
}

#[tokio::test]
async fn rounds_append_in_order_and_a_taken_number_conflicts() {
    let db = fresh_db().await;
    let program = new_program(&db.pool).await;
    let campaign = campaigns::create(
        &db.pool,
        &campaign_spec(&program, jincheng(), &Shape::rush(10, 1)),
    )
    .await
    .unwrap();
    let round_2 = Round {
        round_no: 2,
        starts_at: t0() + Duration::days(1),
        quantity: 5,
        mode: voucher_core::RoundMode::Rush,
    };
    let updated = campaigns::add_round(&db.pool, campaign.id, &round_2)
        .await
        .unwrap();
    assert_eq!(updated.spec.rounds.len(), 2);
    assert_eq!(updated.spec.rounds[1], round_2);

    let again = campaigns::add_round(&db.pool, campaign.id, &round_2).await;
    assert!(
        matches!(again, Err(StoreError::Conflict(Conflict::Round))),
        "{again:?}"
    );
    let skipping = Round {
        round_no: 4,
        starts_at: t0() + Duration::days(3),
        quantity: 5,
        mode: voucher_core::RoundMode::Rush,
    };
    assert!(matches!(
        campaigns::add_round(&db.pool, campaign.id, &skipping).await,
        Err(StoreError::Conflict(Conflict::Round))
    ));
    let missing = campaigns::add_round(&db.pool, CampaignId(campaign.id.0 + 99), &round_2).await;
    assert!(matches!(missing, Err(StoreError::NotFound)));

    // Two concurrent appends of the same next number: exactly one wins.
    let round_3 = Round {
        round_no: 3,
        starts_at: t0() + Duration::days(2),
        quantity: 5,
        mode: voucher_core::RoundMode::Rush,
    };
    let (x, y) = tokio::join!(
        campaigns::add_round(&db.pool, campaign.id, &round_3),
        campaigns::add_round(&db.pool, campaign.id, &round_3)
    );
    assert_eq!(u8::from(x.is_ok()) + u8::from(y.is_ok()), 1);
    assert_eq!(
        campaigns::get(&db.pool, campaign.id)
            .await
            .unwrap()
            .unwrap()
            .spec
            .rounds
            .len(),
        3
    );
}

#[tokio::test]
async fn persisted_vouchers_read_back_newest_first() {
    let env = env(Shape::rush(10, 3)).await;
    let mut made = Vec::new();
    for minute in [1, 2, 3] {
        let req = env.request("alice", t0() + Duration::minutes(minute));
        assert!(claimed(&env.hot.claim(&req).await.unwrap()));
        made.push(req);
    }
    env.persister("p").drain().await.unwrap();
    let list = vouchers::list_for_person(&env.db.pool, &person("alice"))
        .await
        .unwrap();
    assert_eq!(
        list.iter().map(|v| v.voucher_id).collect::<Vec<_>>(),
        made.iter().rev().map(|r| r.voucher_id).collect::<Vec<_>>()
    );
    let first = vouchers::get(&env.db.pool, made[0].voucher_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.claim_id, made[0].claim_id);
    assert_eq!(
        (first.round_no, first.status),
        (1, vouchers::VoucherStatus::Issued)
    );
    assert_eq!(
        (first.claimed_at, first.valid_until),
        (made[0].now, made[0].valid_until)
    );
    assert!(vouchers::list_for_person(&env.db.pool, &person("nobody"))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn every_mapped_constraint_exists_in_the_schema() {
    let db = fresh_db().await;
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT conname::text FROM pg_constraint WHERE connamespace = 'public'::regnamespace",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    for mapped in voucher_store::pg::constraints::mapped_constraints() {
        assert!(
            names.iter().any(|n| n == mapped),
            "{mapped} is not a constraint of the migrated schema"
        );
    }
}

fn merchant_record(id: &str, credit_code: &str) -> merchants::MerchantRecord {
    merchants::MerchantRecord {
        id: MerchantId::parse(id).unwrap(),
        name: "晋城老字号".to_owned(),
        credit_code: credit_code.to_owned(),
        category: "catering".to_owned(),
        city: 140_500,
        county: None,
        status: merchants::MerchantStatus::Active,
        settlement_account: "6222 0000 0000 0001".to_owned(),
        created_by: "test".to_owned(),
        approved_programs: Vec::new(),
    }
}

#[tokio::test]
async fn merchant_writes_name_the_constraint_they_ran_into() {
    let db = fresh_db().await;
    let program = new_program(&db.pool).await;
    let first = merchant_record("m-1", "91140500MA0000001X");
    merchants::create_merchant(&db.pool, &first).await.unwrap();
    assert_eq!(
        merchants::get_merchant(&db.pool, &first.id).await.unwrap(),
        Some(first.clone())
    );

    let same_id = merchant_record("m-1", "91140500MA0000002X");
    assert!(matches!(
        merchants::create_merchant(&db.pool, &same_id).await,
        Err(StoreError::Conflict(Conflict::MerchantId))
    ));
    let same_code = merchant_record("m-2", "91140500MA0000001X");
    assert!(matches!(
        merchants::create_merchant(&db.pool, &same_code).await,
        Err(StoreError::Conflict(Conflict::MerchantCreditCode))
    ));

    merchants::approve(&db.pool, &first.id, program.id, "test", t0())
        .await
        .unwrap();
    assert!(matches!(
        merchants::approve(
            &db.pool,
            &first.id,
            ProgramId(program.id.0 + 99),
            "test",
            t0()
        )
        .await,
        Err(StoreError::NotFound)
    ));
    // A foreign key the write does not expect is not dressed up as "not found".
    let stranger = MerchantId::parse("m-unknown").unwrap();
    let unexpected = merchants::approve(&db.pool, &stranger, program.id, "test", t0()).await;
    assert!(
        matches!(unexpected, Err(StoreError::Pg(_))),
        "{unexpected:?}"
    );

    let key = TerminalKeyId::from_random(Uuid::new_v4());
    let terminal = TerminalId(Uuid::now_v7());
    assert!(matches!(
        terminals::insert_terminal(&db.pool, terminal, &stranger, &key, &stored_secret(), t0())
            .await,
        Err(StoreError::NotFound)
    ));
    terminals::insert_terminal(&db.pool, terminal, &first.id, &key, &stored_secret(), t0())
        .await
        .unwrap();
    assert!(matches!(
        terminals::insert_terminal(
            &db.pool,
            TerminalId(Uuid::now_v7()),
            &first.id,
            &key,
            &stored_secret(),
            t0()
        )
        .await,
        Err(StoreError::Conflict(Conflict::TerminalKeyId))
    ));
    let found = terminals::terminal_by_key(&db.pool, &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.terminal_id, found.status, found.merchant_status),
        (
            terminal,
            terminals::TerminalStatus::Active,
            merchants::MerchantStatus::Active
        )
    );
}

/// A checkout's redemption row of `claims` at `terminal`, with the merchant's `order_ref`.
fn sale(
    claims: &VoucherClaims,
    merchant: &MerchantId,
    terminal: TerminalId,
    order_ref: &str,
) -> redemptions::RedemptionRecord {
    redemptions::RedemptionRecord {
        id: RedemptionId(Uuid::now_v7()),
        merchant_id: merchant.clone(),
        terminal_id: terminal,
        voucher_id: claims.voucher_id,
        campaign_id: claims.campaign_id,
        program_id: claims.program_id,
        person_id: claims.person_id.clone(),
        single_use: true,
        status: redemptions::RedemptionStatus::Approved,
        order_ref: order_ref.to_owned(),
        order_amount_fen: 120_00,
        discount_fen: 20_00,
        refunded_amount_fen: 0,
        reversed_fen: 0,
        notice: None,
        hold_expires_at: None,
        created_at: t0(),
        resolved_at: None,
    }
}

#[tokio::test]
async fn a_repeated_order_ref_is_the_order_ref_conflict_in_both_decision_writes() {
    let db = fresh_db().await;
    let program = new_program(&db.pool).await;
    let campaign = campaigns::create(
        &db.pool,
        &campaign_spec(&program, jincheng(), &Shape::rush(10, 1)),
    )
    .await
    .unwrap();
    budget::ensure_budget(&db.pool, campaign.id, 4)
        .await
        .unwrap();
    let merchant = merchant_record("m-1", "91140500MA0000001X");
    merchants::create_merchant(&db.pool, &merchant)
        .await
        .unwrap();
    let terminal = TerminalId(Uuid::now_v7());
    let key = TerminalKeyId::from_random(Uuid::new_v4());
    terminals::insert_terminal(
        &db.pool,
        terminal,
        &merchant.id,
        &key,
        &stored_secret(),
        t0(),
    )
    .await
    .unwrap();
    let voucher = |campaign_id: CampaignId| VoucherClaims {
        voucher_id: VoucherId(Uuid::now_v7()),
        campaign_id,
        program_id: program.id,
        person_id: person("alice"),
        place: jincheng(),
        category: campaign.spec.category,
        rule: campaign.spec.rule.clone(),
        valid_from: t0(),
        valid_until: t0() + Duration::days(30),
    };
    let redeem = |claims: VoucherClaims, order_ref: &'static str| {
        let pool = db.pool.clone();
        let merchant = merchant.id.clone();
        async move {
            let mut tx = pool.begin().await.unwrap();
            let r = sale(&claims, &merchant, terminal, order_ref);
            let key = Uuid::new_v4().to_string();
            let done = redemptions::redeem_single_use(
                &mut tx,
                &claims,
                &r,
                None,
                &key,
                "sha",
                &serde_json::json!({}),
                0,
                0,
            )
            .await;
            tx.commit().await.unwrap();
            done
        }
    };

    assert_eq!(
        redeem(voucher(campaign.id), "o-1").await.unwrap(),
        redemptions::SingleUse::Recorded { from_token: true }
    );
    let again = redeem(voucher(campaign.id), "o-1").await;
    assert!(
        matches!(again, Err(StoreError::Conflict(Conflict::OrderRef))),
        "{again:?}"
    );
    let unknown_campaign = redeem(voucher(CampaignId(campaign.id.0 + 99)), "o-2").await;
    assert!(
        matches!(unknown_campaign, Err(StoreError::NotFound)),
        "{unknown_campaign:?}"
    );

    let claims = voucher(campaign.id);
    let mut tx = db.pool.begin().await.unwrap();
    token_vouchers::insert_voucher_from_token(&mut tx, &claims)
        .await
        .unwrap();
    let recorded = redemptions::record_decision(
        &mut tx,
        &sale(&claims, &merchant.id, terminal, "o-1"),
        None,
        "k-record",
        "sha",
        &serde_json::json!({}),
    )
    .await;
    assert!(
        matches!(recorded, Err(StoreError::Conflict(Conflict::OrderRef))),
        "{recorded:?}"
    );
}

/// A terminal secret as the store keeps it: sealed (what is sealed does not matter here).
fn stored_secret() -> terminals::SealedSecret {
    terminals::SealedSecret {
        kek_id: 1,
        nonce: vec![0; 12],
        ciphertext: vec![0; 48],
    }
}
