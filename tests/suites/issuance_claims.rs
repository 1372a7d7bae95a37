//! The claim path over real HTTP against real Redis and PostgreSQL: the rush sells exactly
//! the stock with per-person limits across devices, retries are idempotent, and what Redis
//! hands out is what PostgreSQL records.

use crate::support::{release_day, spawn, Options};
use futures::stream::{self, StreamExt};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rush_of_4000_claims_from_1000_people_on_two_devices_sells_exactly_the_stock() {
    // Arrange: stock 500, one per person; 1000 people, each on two phones tapping twice.
    let app = spawn(Options::default()).await;
    let opens = release_day();
    let campaign = app.catering_campaign(500, 1, &[(opens, 500)], 7).await;
    app.clock.set(opens);
    let people: Vec<(String, String)> = (0..1000)
        .map(|i| {
            let p = format!("P{i:05}");
            let token = app.resident(&p, 140500, 2);
            (p, token)
        })
        .collect();
    let attempts: Vec<&(String, String)> = people.iter().flat_map(|p| [p, p, p, p]).collect();
    assert_eq!(attempts.len(), 4000);

    // Act: every attempt its own claim id, up to 1000 in flight at once.
    let replies: Vec<(String, u16, String, String)> = stream::iter(attempts)
        .map(|(person, token)| {
            let app = &app;
            async move {
                let r = app.claim(token, campaign, Uuid::new_v4()).await;
                let voucher = r.body["voucher_id"].as_str().unwrap_or("").to_owned();
                (person.clone(), r.status, r.code().to_owned(), voucher)
            }
        })
        .buffer_unordered(1000)
        .collect()
        .await;

    // Assert: exactly 500 vouchers, nobody holds two, every refusal is sold-out or the limit.
    let won: Vec<&(String, u16, String, String)> = replies.iter().filter(|r| r.1 == 201).collect();
    assert_eq!(won.len(), 500, "vouchers handed out");
    let holders: HashSet<&str> = won.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(holders.len(), 500, "a person got two vouchers");
    let mut refusals: HashMap<&str, usize> = HashMap::new();
    for r in replies.iter().filter(|r| r.1 != 201) {
        assert_eq!(r.1, 409, "unexpected reply {r:?}");
        *refusals.entry(r.2.as_str()).or_default() += 1;
    }
    assert!(
        refusals
            .keys()
            .all(|c| *c == "SOLD_OUT" || *c == "PER_PERSON_LIMIT"),
        "{refusals:?}"
    );

    // Redis and PostgreSQL agree once the persister drains.
    app.wait_persisted().await;
    let counters = app
        .state
        .hot
        .counters(voucher_core::CampaignId(campaign))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (counters.claimed, counters.live, counters.pool),
        (500, 0, 0)
    );
    assert_eq!(app.count("SELECT count(*) FROM vouchers").await, 500);
    assert_eq!(
        app.count("SELECT count(DISTINCT person_id) FROM vouchers")
            .await,
        500
    );
    assert_eq!(
        app.count("SELECT count(*) FROM events WHERE kind = 'voucher_claimed'")
            .await,
        500
    );
    let persisted: HashSet<String> =
        sqlx::query_scalar::<_, uuid::Uuid>("SELECT voucher_id FROM vouchers")
            .fetch_all(&app.db.pool)
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.to_string())
            .collect();
    let answered: HashSet<String> = won.iter().map(|r| r.3.clone()).collect();
    assert_eq!(
        persisted, answered,
        "PostgreSQL holds exactly the vouchers the residents were given"
    );
    for person in holders.iter().take(50) {
        let n = app
            .state
            .hot
            .person_claims(
                voucher_core::CampaignId(campaign),
                &voucher_core::PersonId::parse(person).unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_claim_id_twice_gives_one_voucher_and_the_same_token() {
    let app = spawn(Options::default()).await;
    let opens = release_day();
    let campaign = app.catering_campaign(10, 3, &[(opens, 10)], 7).await;
    app.clock.set(opens);
    let token = app.resident("P00001", 140500, 2);
    let claim_id = Uuid::new_v4();

    let first = app.claim(&token, campaign, claim_id).await;
    let second = app.claim(&token, campaign, claim_id).await;

    assert_eq!(first.status, 201, "{:?}", first.body);
    assert_eq!(second.status, 200, "{:?}", second.body);
    assert_eq!(first.body["voucher_id"], second.body["voucher_id"]);
    assert_eq!(
        first.body["token"], second.body["token"],
        "a replay re-signs the same facts"
    );
    assert_eq!(second.body["replayed"], true);
    app.wait_persisted().await;
    assert_eq!(app.count("SELECT count(*) FROM vouchers").await, 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_claim_id_sent_concurrently_gives_one_voucher() {
    let app = spawn(Options::default()).await;
    let opens = release_day();
    let campaign = app.catering_campaign(10, 3, &[(opens, 10)], 7).await;
    app.clock.set(opens);
    let token = app.resident("P00002", 140500, 2);
    let claim_id = Uuid::new_v4();

    let replies =
        futures::future::join_all((0..20).map(|_| app.claim(&token, campaign, claim_id))).await;

    let created = replies.iter().filter(|r| r.status == 201).count();
    let replayed = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!((created, replayed), (1, 19), "{replies:?}");
    let ids: HashSet<&str> = replies
        .iter()
        .map(|r| r.body["voucher_id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(ids.len(), 1);
    app.wait_persisted().await;
    assert_eq!(app.count("SELECT count(*) FROM vouchers").await, 1);
    let counters = app
        .state
        .hot
        .counters(voucher_core::CampaignId(campaign))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(counters.claimed, 1);
    app.stop().await;
}
