//! The record in PostgreSQL: programs, campaigns and rounds map to the domain types and
//! back; campaign lists are scoped by place; rounds append in order; vouchers are read back
//! as the persister wrote them.

#![allow(clippy::unwrap_used)]

use crate::store_support::{campaign_spec, claimed, env, jincheng, new_program, person, t0, Shape};
use chrono::Duration;
use system_tests::fresh_db;
use voucher_core::{CampaignId, CampaignStatus, PlaceCode, ProgramId, Round};
use voucher_store::pg::{campaigns, programs, vouchers};
use voucher_store::StoreError;

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
    };
    let updated = campaigns::add_round(&db.pool, campaign.id, &round_2)
        .await
        .unwrap();
    assert_eq!(updated.spec.rounds.len(), 2);
    assert_eq!(updated.spec.rounds[1], round_2);

    let again = campaigns::add_round(&db.pool, campaign.id, &round_2).await;
    assert!(
        matches!(again, Err(StoreError::Conflict("round"))),
        "{again:?}"
    );
    let skipping = Round {
        round_no: 4,
        starts_at: t0() + Duration::days(3),
        quantity: 5,
    };
    assert!(matches!(
        campaigns::add_round(&db.pool, campaign.id, &skipping).await,
        Err(StoreError::Conflict("round"))
    ));
    let missing = campaigns::add_round(&db.pool, CampaignId(campaign.id.0 + 99), &round_2).await;
    assert!(matches!(missing, Err(StoreError::NotFound)));

    // Two concurrent appends of the same next number: exactly one wins.
    let round_3 = Round {
        round_no: 3,
        starts_at: t0() + Duration::days(2),
        quantity: 5,
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
