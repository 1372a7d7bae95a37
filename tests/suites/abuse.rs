//! Abuse (issue 13, hostile input): one person flooding claims from many devices, one address
//! with thousands of identities, one terminal flooding redemptions.
//!
//! Each test races many real requests (tokio tasks over real HTTP connections) against the
//! real service with its production limits, and checks that the keyed GCRA limit holds: what
//! it admits for the abusive key never exceeds `burst + rate × elapsed` (rounded up, plus one
//! for the edges), every refusal is `429 RATE_LIMITED` with `Retry-After`, and a refused
//! request writes nothing. Meanwhile other users, claiming or paying at a normal pace, are
//! all served. Their latencies are printed (p50/p99) for information only: speed is the
//! loadtest harness's business, so nothing here asserts on time.

use crate::redemption_support as rdm;
use crate::support::{release_day, spawn, Options};
use futures::future::join_all;
use futures::stream::{self, StreamExt};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;
use voucher_core::identity::{self, Identity};
use voucher_core::{CampaignId, Category, Fen, PersonId, PlaceCode, RefundPolicy};

/// A keyed GCRA quota, as the service under test is configured.
#[derive(Debug, Clone, Copy)]
struct Quota {
    per_second: u32,
    burst: u32,
}

impl Quota {
    /// The most one key can be admitted within `elapsed`: the burst, the sustained rate over
    /// the elapsed time rounded up, and one more for the edges of the measurement.
    fn most_admitted(self, elapsed: Duration) -> usize {
        let ms = u64::try_from(elapsed.as_millis()).unwrap();
        let most = u64::from(self.burst) + (u64::from(self.per_second) * ms).div_ceil(1000) + 1;
        usize::try_from(most).unwrap()
    }

    fn burst(self) -> usize {
        usize::try_from(self.burst).unwrap()
    }
}

/// What one request got back.
#[derive(Debug)]
struct Answer {
    status: u16,
    code: String,
    retry_after: Option<String>,
    body: Value,
}

impl Answer {
    async fn read(resp: reqwest::Response) -> Answer {
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        Answer {
            status,
            code: body["code"].as_str().unwrap_or("").to_owned(),
            retry_after,
            body,
        }
    }

    fn refused(&self) -> bool {
        self.status == 429
    }

    fn approved(&self) -> bool {
        self.status == 200 && self.body["outcome"] == "approved"
    }
}

/// Every refusal is `429 RATE_LIMITED` and says when to come back (whole seconds, ≥ 1).
fn assert_refusals_say_when<'a>(answers: impl IntoIterator<Item = &'a Answer>) {
    for a in answers.into_iter().filter(|a| a.refused()) {
        assert_eq!(a.code, "RATE_LIMITED", "{a:?}");
        let secs: u64 = a
            .retry_after
            .as_deref()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!(secs >= 1, "a 429 without a usable Retry-After: {a:?}");
    }
}

/// Prints how the other users fared during the flood (information, not an assertion).
fn report_latencies(test: &str, who: &str, mut latencies: Vec<Duration>) {
    latencies.sort();
    let n = latencies.len();
    let rank = |p: usize| latencies[(n * p).div_ceil(100).max(1) - 1];
    eprintln!(
        "{test}: {who}: {n} requests during the flood, all served; p50 {:?}, p99 {:?}, max {:?}",
        rank(50),
        rank(99),
        latencies[n - 1]
    );
}

/// A claim over `client`, as sent through the demo's proxy from `address`.
async fn claim(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    campaign: i64,
    address: &str,
    device: Option<&str>,
) -> Answer {
    let mut req = client
        .post(format!("{base}/v1/campaigns/{campaign}/claims"))
        .bearer_auth(token)
        .header("x-forwarded-for", address)
        .json(&json!({ "claim_id": Uuid::new_v4() }));
    if let Some(device) = device {
        req = req.header("x-device-id", device);
    }
    Answer::read(req.send().await.unwrap()).await
}

/// Each of `residents` claiming `campaigns` at a person's pace from an address of their own
/// (203.0.113.n), the n-th starting `first + n × step` ms after the others' flood began.
fn residents_at_a_normal_pace(
    http: &reqwest::Client,
    base: &str,
    residents: &[String],
    campaigns: &[i64],
    (first, step): (u64, u64),
) -> Vec<tokio::task::JoinHandle<Vec<(Answer, Duration)>>> {
    residents
        .iter()
        .enumerate()
        .map(|(i, token)| {
            tokio::spawn(claim_at_a_normal_pace(
                http.clone(),
                base.to_owned(),
                token.clone(),
                format!("203.0.113.{}", i + 1),
                campaigns.to_vec(),
                Duration::from_millis(first + step * u64::try_from(i).unwrap()),
            ))
        })
        .collect()
}

/// A resident claiming `campaigns` one after the other at a person's pace, from their own
/// address: each answer with its latency.
async fn claim_at_a_normal_pace(
    client: reqwest::Client,
    base: String,
    token: String,
    address: String,
    campaigns: Vec<i64>,
    start_after: Duration,
) -> Vec<(Answer, Duration)> {
    tokio::time::sleep(start_after).await;
    let mut answers = Vec::new();
    for campaign in campaigns {
        let sent = Instant::now();
        let answer = claim(&client, &base, &token, campaign, &address, None).await;
        answers.push((answer, sent.elapsed()));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    answers
}

/// One phone of the flooding person: its own HTTP client (its own connections and user
/// agent), its own identity token, its own device id and address.
#[derive(Clone)]
struct Device {
    client: reqwest::Client,
    token: String,
    id: String,
    address: String,
}

/// One flooding worker: claims in a loop, rotating over `campaigns`, until the residents are
/// done and it sent at least `at_least` (at most `at_most`, whatever happens).
async fn flood_claims(
    device: Device,
    base: String,
    campaigns: Vec<i64>,
    offset: usize,
    stop: Arc<AtomicBool>,
    (at_least, at_most): (usize, usize),
) -> Vec<(i64, Answer)> {
    let mut answers = Vec::new();
    while answers.len() < at_most && (answers.len() < at_least || !stop.load(Ordering::Relaxed)) {
        let campaign = campaigns[(offset + answers.len()) % campaigns.len()];
        let answer = claim(
            &device.client,
            &base,
            &device.token,
            campaign,
            &device.address,
            Some(&device.id),
        )
        .await;
        answers.push((campaign, answer));
    }
    answers
}

const FLOODER: &str = "F00001";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_person_flooding_claims_from_40_devices_is_held_to_the_person_limit_and_others_are_served(
) {
    // Arrange: the production limits (per person 2 claims/s, bursts of 5; per address
    // 50 requests/s, bursts of 200) behind the demo's proxy, which sets X-Forwarded-For;
    // three campaigns of two vouchers per person. The flooder has 40 phones, each with its
    // own connection, user agent, device id, address and identity token.
    let person = Quota {
        per_second: 2,
        burst: 5,
    };
    let app = spawn(Options {
        person_rate: (person.per_second, person.burst),
        ip_rate: (50, 200),
        trust_forwarded_for: true,
        ..Options::default()
    })
    .await;
    let opens = release_day();
    let mut campaigns = Vec::new();
    for _ in 0..3 {
        campaigns.push(app.catering_campaign(1000, 2, &[(opens, 1000)], 7).await);
    }
    app.clock.set(opens);
    let now = app.clock_now();
    let devices: Vec<Device> = (0..40u8)
        .map(|d| {
            let who = Identity {
                person_id: PersonId::parse(FLOODER).unwrap(),
                home: PlaceCode::try_from(140_500).unwrap(),
                real_name_level: 2,
                // A login per phone: the tokens differ, the person is the same.
                expires_at: now + chrono::Duration::hours(12) + chrono::Duration::seconds(d.into()),
            };
            Device {
                client: reqwest::Client::builder()
                    .user_agent(format!("VoucherApp/3.{d} (Android; phone-{d})"))
                    .build()
                    .unwrap(),
                token: identity::mint(&app.secrets.idp_signing, &who, now),
                id: format!("device-{d:02}"),
                address: format!("198.51.100.{}", d + 1),
            }
        })
        .collect();
    let residents: Vec<String> = (0..12)
        .map(|i| app.resident(&format!("R{i:05}"), 140500, 2))
        .collect();

    // Act: each phone keeps two claims in flight (80 at once) until the residents, each
    // claiming the three campaigns a quarter of a second apart from their own address,
    // are done.
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let flood: Vec<_> = devices
        .iter()
        .flat_map(|d| [d, d])
        .enumerate()
        .map(|(w, d)| {
            tokio::spawn(flood_claims(
                d.clone(),
                app.base.clone(),
                campaigns.clone(),
                w,
                stop.clone(),
                (15, 500),
            ))
        })
        .collect();
    let served =
        residents_at_a_normal_pace(&app.http, &app.base, &residents, &campaigns, (100, 50));
    let served: Vec<(Answer, Duration)> = join_all(served)
        .await
        .into_iter()
        .flat_map(Result::unwrap)
        .collect();
    stop.store(true, Ordering::Relaxed);
    let flood: Vec<(i64, Answer)> = join_all(flood)
        .await
        .into_iter()
        .flat_map(Result::unwrap)
        .collect();
    let elapsed = started.elapsed();

    // Assert: the person limit admitted at least its burst and no more than the quota allows.
    let admitted: Vec<&(i64, Answer)> = flood.iter().filter(|(_, a)| !a.refused()).collect();
    let most = person.most_admitted(elapsed);
    eprintln!(
        "abuse/person: {} claims in {elapsed:?}, {} admitted (quota allows {most}), {} refused",
        flood.len(),
        admitted.len(),
        flood.len() - admitted.len()
    );
    assert!(admitted.len() >= person.burst(), "{admitted:?}");
    assert!(admitted.len() <= most, "{} > {most}", admitted.len());
    assert_refusals_say_when(flood.iter().map(|(_, a)| a));
    let mut won: BTreeMap<i64, i64> = campaigns.iter().map(|c| (*c, 0)).collect();
    for (campaign, a) in &admitted {
        match (a.status, a.code.as_str()) {
            (201, _) => *won.get_mut(campaign).unwrap() += 1,
            (409, "PER_PERSON_LIMIT") => {}
            _ => panic!("an admitted claim neither won nor met the limit: {a:?}"),
        }
    }
    assert!(won.values().all(|n| *n <= 2), "{won:?}");
    assert!(won.values().sum::<i64>() >= 1, "{won:?}");

    // Redis and PostgreSQL hold exactly the vouchers the flooder was given.
    app.wait_persisted().await;
    let flooder = PersonId::parse(FLOODER).unwrap();
    for (campaign, n) in &won {
        let in_redis = app
            .state
            .hot
            .person_claims(CampaignId(*campaign), &flooder)
            .await
            .unwrap();
        let in_pg: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM vouchers WHERE campaign_id = $1 AND person_id = $2",
        )
        .bind(campaign)
        .bind(FLOODER)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
        assert_eq!(
            (i64::from(in_redis), in_pg),
            (*n, *n),
            "campaign {campaign}"
        );
    }

    // Every resident got every voucher, none was slowed into a refusal.
    for (a, _) in &served {
        assert_eq!(a.status, 201, "a resident was not served: {a:?}");
    }
    assert_eq!(served.len(), 12 * 3);
    assert_eq!(
        app.count("SELECT count(*) FROM vouchers WHERE person_id LIKE 'R%'")
            .await,
        12 * 3
    );
    report_latencies(
        "abuse/person",
        "residents' claims",
        served.into_iter().map(|(_, t)| t).collect(),
    );
    app.stop().await;
}

const ATTACKER_ADDRESS: &str = "192.0.2.66";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_address_with_2000_identities_is_held_to_the_address_limit_and_others_are_served() {
    // Arrange: the production limits behind the demo's proxy; one campaign with stock for
    // everyone; 2,000 identities that all come from one address, and 30 residents from
    // their own.
    let address = Quota {
        per_second: 50,
        burst: 200,
    };
    let app = spawn(Options {
        person_rate: (2, 5),
        ip_rate: (address.per_second, address.burst),
        trust_forwarded_for: true,
        ..Options::default()
    })
    .await;
    let opens = release_day();
    let campaign = app.catering_campaign(5000, 1, &[(opens, 5000)], 7).await;
    app.clock.set(opens);
    let identities: Vec<String> = (0..2000)
        .map(|i| app.resident(&format!("B{i:05}"), 140500, 2))
        .collect();
    let residents: Vec<String> = (0..30)
        .map(|i| app.resident(&format!("R{i:05}"), 140500, 2))
        .collect();

    // Act: each identity claims once, 100 at a time, each claim its own task; meanwhile a
    // resident claims every 40 ms.
    let started = Instant::now();
    let flood = {
        let (client, base) = (app.http.clone(), app.base.clone());
        tokio::spawn(async move {
            let answers: Vec<Answer> = stream::iter(identities)
                .map(|token| {
                    let (client, base) = (client.clone(), base.clone());
                    tokio::spawn(async move {
                        claim(&client, &base, &token, campaign, ATTACKER_ADDRESS, None).await
                    })
                })
                .buffer_unordered(100)
                .map(Result::unwrap)
                .collect()
                .await;
            (answers, started.elapsed())
        })
    };
    let served = residents_at_a_normal_pace(&app.http, &app.base, &residents, &[campaign], (0, 40));
    let (flood, elapsed) = flood.await.unwrap();
    let served: Vec<(Answer, Duration)> = join_all(served)
        .await
        .into_iter()
        .flat_map(Result::unwrap)
        .collect();

    // Assert: the address limit admitted at least its burst and no more than the quota
    // allows; what it admitted was claimed, what it refused says when to come back.
    let admitted = flood.iter().filter(|a| !a.refused()).count();
    let most = address.most_admitted(elapsed);
    eprintln!(
        "abuse/address: {} claims in {elapsed:?}, {admitted} admitted (quota allows {most}), {} refused",
        flood.len(),
        flood.len() - admitted
    );
    assert_eq!(flood.len(), 2000);
    assert!(admitted >= address.burst(), "{admitted}");
    assert!(admitted <= most, "{admitted} > {most}");
    assert_refusals_say_when(&flood);
    for a in flood.iter().filter(|a| !a.refused()) {
        assert_eq!(a.status, 201, "{a:?}");
    }
    for (a, _) in &served {
        assert_eq!(a.status, 201, "a resident was not served: {a:?}");
    }
    assert_eq!(served.len(), 30);
    app.wait_persisted().await;
    assert_eq!(
        app.count("SELECT count(*) FROM vouchers WHERE person_id LIKE 'B%'")
            .await,
        i64::try_from(admitted).unwrap()
    );
    assert_eq!(
        app.count("SELECT count(*) FROM vouchers WHERE person_id LIKE 'R%'")
            .await,
        30
    );

    // The per-person limiter only met the identities the address limit let through, and
    // housekeeping forgets them once their quotas are full again (one claim at 2/s: half a
    // second).
    let remembered = app.state.person_limit.len();
    assert!(
        remembered <= admitted + served.len(),
        "{remembered} persons remembered for {admitted} admitted claims"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    app.state.person_limit.housekeeping();
    assert!(
        app.state.person_limit.is_empty(),
        "{} persons still remembered after housekeeping",
        app.state.person_limit.len()
    );

    // The service is healthy and ready after the flood.
    for path in ["/healthz", "/readyz"] {
        let a = Answer::read(
            app.http
                .get(format!("{}{path}", app.base))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(a.status, 200, "{path}: {a:?}");
    }
    report_latencies(
        "abuse/address",
        "residents' claims",
        served.into_iter().map(|(_, t)| t).collect(),
    );
    app.stop().await;
}

/// A signed redemption as a terminal sends it.
struct Checkout {
    client: reqwest::Client,
    base: String,
    term: rdm::Term,
    timestamp: i64,
}

impl Checkout {
    async fn redeem(&self, code: &str, idem: &str, order_ref: &str) -> Answer {
        let body = serde_json::to_vec(
            &json!({"code": code, "order_amount_fen": 120_00, "order_ref": order_ref}),
        )
        .unwrap();
        let path = "/v1/redemptions";
        let headers = redemption::sign_request(
            &self.term.key_id,
            &self.term.secret,
            "POST",
            path,
            self.timestamp,
            &body,
        )
        .unwrap();
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .header("idempotency-key", idem)
            .body(body);
        for (name, value) in headers {
            req = req.header(name, value);
        }
        Answer::read(req.send().await.unwrap()).await
    }
}

/// One flood request: the voucher's index, its idempotency key and order ref, the answer.
type Flooded = (usize, String, String, Answer);

/// One flooding worker of a terminal: takes the next request number until the others are
/// done and `at_least` were sent (at most `at_most`, whatever happens). Request `n` redeems
/// voucher `n / 3` (round and round the codes), so every voucher is raced three times at
/// once under three idempotency keys, and again on every later lap.
async fn flood_redemptions(
    till: Arc<Checkout>,
    codes: Arc<Vec<String>>,
    next: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    (at_least, at_most): (usize, usize),
) -> Vec<Flooded> {
    let mut answers = Vec::new();
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= at_most || (n >= at_least && stop.load(Ordering::Relaxed)) {
            return answers;
        }
        let voucher = (n / 3) % codes.len();
        let (idem, order_ref) = (format!("flood-{n}"), format!("o-flood-{n}"));
        let answer = till.redeem(&codes[voucher], &idem, &order_ref).await;
        answers.push((voucher, idem, order_ref, answer));
    }
}

/// A till at a normal pace: `codes` one after the other, a tenth of a second apart.
async fn pay_at_a_normal_pace(
    till: Arc<Checkout>,
    codes: Vec<String>,
    name: &'static str,
) -> Vec<(Answer, Duration)> {
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut answers = Vec::new();
    for (i, code) in codes.iter().enumerate() {
        let sent = Instant::now();
        let answer = till
            .redeem(code, &format!("{name}-{i}"), &format!("o-{name}-{i}"))
            .await;
        answers.push((answer, sent.elapsed()));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_terminal_flooding_redemptions_is_held_to_its_limit_writes_nothing_refused_and_others_are_served(
) {
    // Arrange: the production terminal limit (10 requests/s, bursts of 30); a flooding
    // terminal, another terminal of the same merchant, and a terminal of another merchant.
    let terminal = Quota {
        per_second: 10,
        burst: 30,
    };
    let app = rdm::spawn_with(|s| {
        s.rate_limits.terminal_per_second = terminal.per_second;
        s.rate_limits.terminal_burst = terminal.burst;
    })
    .await;
    let campaign = app
        .catering(RefundPolicy::Restore, Fen::from_yuan(10_000_000).unwrap())
        .await;
    let programs = [campaign.spec.program_id];
    let flooder = app
        .merchant("m-flood", Category::Catering, None, &programs)
        .await;
    let neighbour = app.terminal("m-flood").await;
    let other = app
        .merchant("m-other", Category::Catering, None, &programs)
        .await;
    let codes: Vec<String> = (0..200)
        .map(|i| app.code(&app.voucher(&campaign, &format!("V{i:05}"))))
        .collect();
    let fresh = |who: &str| -> Vec<String> {
        (0..10)
            .map(|i| app.code(&app.voucher(&campaign, &format!("{who}{i:03}"))))
            .collect()
    };
    let (neighbour_codes, other_codes) = (fresh("N"), fresh("O"));
    let till = |term: &rdm::Term| {
        Arc::new(Checkout {
            client: app.http.clone(),
            base: app.base.clone(),
            term: term.clone(),
            timestamp: {
                use voucher_core::Clock as _;
                app.clock.now().timestamp()
            },
        })
    };

    // Act: 40 workers flood from the one terminal (each voucher three times at once) until
    // the two other tills, paying ten orders each a tenth of a second apart, are done.
    let (codes, next, stop) = (
        Arc::new(codes),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let started = Instant::now();
    let flood: Vec<_> = (0..40)
        .map(|_| {
            tokio::spawn(flood_redemptions(
                till(&flooder),
                codes.clone(),
                next.clone(),
                stop.clone(),
                (300, 20_000),
            ))
        })
        .collect();
    let served: Vec<_> = [
        (till(&neighbour), neighbour_codes, "neighbour"),
        (till(&other), other_codes, "other"),
    ]
    .into_iter()
    .map(|(till, codes, name)| tokio::spawn(pay_at_a_normal_pace(till, codes, name)))
    .collect();
    let served: Vec<Vec<(Answer, Duration)>> = join_all(served)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    stop.store(true, Ordering::Relaxed);
    let flood: Vec<Flooded> = join_all(flood)
        .await
        .into_iter()
        .flat_map(Result::unwrap)
        .collect();
    let elapsed = started.elapsed();

    // Assert: the terminal limit admitted at least its burst and no more than the quota.
    let (refused, admitted): (Vec<&Flooded>, Vec<&Flooded>) =
        flood.iter().partition(|(_, _, _, a)| a.refused());
    let most = terminal.most_admitted(elapsed);
    eprintln!(
        "abuse/terminal: {} redemptions in {elapsed:?}, {} admitted (quota allows {most}), {} refused",
        flood.len(),
        admitted.len(),
        refused.len()
    );
    assert!(admitted.len() >= terminal.burst(), "{admitted:?}");
    assert!(admitted.len() <= most, "{} > {most}", admitted.len());
    assert_refusals_say_when(flood.iter().map(|(_, _, _, a)| a));

    // What was admitted was approved once per voucher, the other races declined.
    let mut approvals: BTreeMap<usize, usize> = BTreeMap::new();
    for (voucher, _, _, a) in &admitted {
        if a.approved() {
            *approvals.entry(*voucher).or_default() += 1;
        } else {
            assert_eq!(
                (a.status, a.body["reason"].as_str()),
                (200, Some("VOUCHER_ALREADY_REDEEMED")),
                "{a:?}"
            );
        }
    }
    assert!(approvals.values().all(|n| *n == 1), "{approvals:?}");
    let approved = i64::try_from(approvals.len()).unwrap();
    assert!(approved >= 1);

    // The other tills were all served.
    for (a, _) in served.iter().flatten() {
        assert!(a.approved(), "another till was not served: {a:?}");
    }

    // PostgreSQL holds one redemption per approval and nothing of a refused request; no
    // voucher was spent twice.
    let by_terminal = |term: &rdm::Term| {
        format!(
            "redemptions WHERE terminal_id::text = '{}'",
            term.terminal_id
        )
    };
    assert_eq!(app.count(&by_terminal(&flooder)).await, approved);
    assert_eq!(app.count(&by_terminal(&neighbour)).await, 10);
    assert_eq!(app.count(&by_terminal(&other)).await, 10);
    assert_eq!(
        app.count(
            "(SELECT voucher_id FROM redemptions GROUP BY voucher_id HAVING count(*) > 1) twice"
        )
        .await,
        0
    );
    assert_eq!(
        app.count("events WHERE kind = 'voucher_redeemed'").await,
        approved + 20
    );
    let refused_keys: Vec<String> = refused.iter().map(|(_, k, _, _)| k.clone()).collect();
    let refused_orders: Vec<String> = refused.iter().map(|(_, _, o, _)| o.clone()).collect();
    let written: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM idempotency_keys WHERE idem_key = ANY($1)),
                (SELECT count(*) FROM redemptions WHERE order_ref = ANY($2))",
    )
    .bind(&refused_keys)
    .bind(&refused_orders)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(written, (0, 0), "a refused request left a trace");

    // Redis remembers a nonce for each admitted request only.
    let mut redis = redis::Client::open(app.redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let nonces: Vec<String> = redis::cmd("KEYS")
        .arg(format!("*rdm:nonce:{}:*", flooder.key_id))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(nonces.len(), admitted.len());

    let mut latencies: Vec<Duration> = Vec::new();
    for (who, answers) in [
        "another terminal of the merchant",
        "another merchant's terminal",
    ]
    .iter()
    .zip(&served)
    {
        let times: Vec<Duration> = answers.iter().map(|(_, t)| *t).collect();
        latencies.extend(&times);
        report_latencies("abuse/terminal", who, times);
    }
    report_latencies("abuse/terminal", "both other tills", latencies);
    app.stop().await;
}
