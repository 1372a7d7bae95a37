//! Expiry and recycling with a controlled clock: vouchers left unused past their validity
//! expire, their stock returns to the campaign, and the next round releases it.

use crate::support::{release_day, spawn, Options};
use chrono::Duration;
use uuid::Uuid;
use voucher_core::CampaignId;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unused_vouchers_expire_and_their_stock_is_claimable_in_the_next_round() {
    // Arrange: stock 3 all in round 1, a second round a week later; vouchers valid 2 days.
    let app = spawn(Options::default()).await;
    let opens = release_day();
    let campaign = app
        .catering_campaign(3, 1, &[(opens, 3), (opens + Duration::days(7), 1)], 2)
        .await;
    let id = CampaignId(campaign);
    app.clock.set(opens);
    for i in 0..3 {
        let r = app
            .claim(
                &app.resident(&format!("A{i}"), 140500, 2),
                campaign,
                Uuid::new_v4(),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
    let late = app
        .claim(&app.resident("A9", 140500, 2), campaign, Uuid::new_v4())
        .await;
    assert_eq!(late.code(), "SOLD_OUT");
    app.wait_persisted().await;

    // Act 1: one day later nothing is due; three days later all three are.
    app.clock.set(opens + Duration::days(1));
    let none = voucher_store::expiry::run_once(&app.state.pg, &app.state.hot, app.clock_now(), 100)
        .await
        .unwrap();
    assert_eq!((none.expired, none.recycled), (0, 0));
    app.clock.set(opens + Duration::days(3));
    let report =
        voucher_store::expiry::run_once(&app.state.pg, &app.state.hot, app.clock_now(), 100)
            .await
            .unwrap();

    // Assert: expired in PostgreSQL, stock back in the pool, numbers add up, events recorded.
    assert_eq!((report.expired, report.recycled), (3, 3));
    assert_eq!(
        app.count("SELECT count(*) FROM vouchers WHERE status = 'expired'")
            .await,
        3
    );
    let c = app.state.hot.counters(id).await.unwrap().unwrap();
    assert_eq!((c.pool, c.live, c.claimed, c.recycled), (3, 0, 3, 3));
    assert_eq!(c.total, c.pool + c.live + c.claimed - c.recycled);
    let again =
        voucher_store::expiry::run_once(&app.state.pg, &app.state.hot, app.clock_now(), 100)
            .await
            .unwrap();
    assert_eq!(
        (again.expired, again.recycled),
        (0, 0),
        "a second pass does nothing"
    );
    app.wait_persisted().await;
    assert_eq!(
        app.count("SELECT count(*) FROM events WHERE kind = 'voucher_expired'")
            .await,
        3
    );
    assert_eq!(
        app.count("SELECT count(*) FROM events WHERE kind = 'stock_recycled'")
            .await,
        3
    );

    // The expired voucher shows as expired to its holder, and has no dynamic code any more.
    let holder = app.resident("A0", 140500, 2);
    let mine = app
        .send(
            app.at(reqwest::Method::GET, "/v1/me/vouchers")
                .bearer_auth(&holder),
        )
        .await;
    assert_eq!(mine.status, 200);
    assert_eq!(mine.body[0]["status"], "expired", "{:?}", mine.body);

    // Still sold out until round 2 opens; then round 2 releases its 1 plus the 3 recycled.
    let before = app
        .claim(&app.resident("B0", 140500, 2), campaign, Uuid::new_v4())
        .await;
    assert_eq!(before.code(), "SOLD_OUT");
    app.clock.set(opens + Duration::days(7));
    let mut got = 0;
    for i in 1..=4 {
        let r = app
            .claim(
                &app.resident(&format!("B{i}"), 140500, 2),
                campaign,
                Uuid::new_v4(),
            )
            .await;
        if r.status == 201 {
            got += 1;
        } else {
            assert_eq!(r.code(), "SOLD_OUT");
        }
    }
    assert_eq!(
        got, 3,
        "the recycled stock is claimable, and no more than the stock"
    );
    let c = app.state.hot.counters(id).await.unwrap().unwrap();
    assert_eq!(c.total, c.pool + c.live + c.claimed - c.recycled);
    assert_eq!(
        c.claimed - c.recycled,
        3,
        "never more live vouchers than the stock"
    );
    app.stop().await;
}
