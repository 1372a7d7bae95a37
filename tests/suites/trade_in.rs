//! Car trade-in subsidy (汽车以旧换新, seed 004 §二(一)) through the issuance service's HTTP
//! API, in process, on a private Redis, a fresh database and a manual clock standing in the
//! second half of 2023 (the seed's window): papers uploaded and stored once by hash,
//! applications refused outside the window with its dates, the one-subsidy-per-car-and-
//! invoice rule under racing submissions, the city's review (place-scoped, one approval
//! under racing reviewers) and the ONE subsidy line an approval writes.

use chrono::{DateTime, Duration, TimeZone, Utc};
use futures::future::join_all;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::path::PathBuf;
use std::sync::Arc;
use system_tests::{fresh_db, TestDb, TestRedis};
use uuid::Uuid;
use voucher_core::trade_in::Vin;
use voucher_core::{Clock, CreditCode, ManualClock, PersonId, PlaceCode};

/// 2023-08-15 12:00 in Beijing: inside the seed's window (2023-07-01..=2023-12-31).
fn mid_2023() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2023, 8, 15, 4, 0, 0).single().unwrap()
}

const JINCHENG: u32 = 140_500;
const YANGCHENG: u32 = 140_522;
const TAIYUAN: u32 = 140_100;

/// The issuance service with the trade-in API.
struct App {
    base: String,
    http: reqwest::Client,
    clock: ManualClock,
    secrets: issuance::DevSecrets,
    docs: PathBuf,
    db: TestDb,
    handle: issuance::ShutdownHandle,
    _redis: TestRedis,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

async fn spawn(tune: impl FnOnce(&mut issuance::Settings)) -> App {
    let redis = TestRedis::start();
    let db = fresh_db().await;
    let secrets_dir = tempfile::tempdir().unwrap();
    let docs_dir = tempfile::tempdir().unwrap();
    let secrets = issuance::generate_dev_secrets(secrets_dir.path()).unwrap();
    let mut s = issuance::Settings::default();
    s.server.port = 0;
    s.server.workers = Some(2);
    s.server.request_timeout_ms = 30_000;
    s.redis.url = redis.url().into();
    s.redis.ack_replicas = 0; // a lone test Redis: no replica to wait for
    s.postgres.url = db.url.clone().into();
    s.postgres.max_connections = 8;
    s.postgres.acquire_timeout_ms = 20_000;
    s.secrets_dir = secrets.dir.clone();
    s.persister.enabled = false;
    s.expiry.enabled = false;
    s.campaigns_refresh_ms = 0;
    s.rate_limits.ip_per_second = 100_000;
    s.rate_limits.ip_burst = 100_000;
    s.documents.dir = docs_dir.path().join("documents");
    tune(&mut s);
    let docs = s.documents.dir.clone();
    let clock = ManualClock::new(mid_2023());
    let app = issuance::Application::build(s, Arc::new(clock.clone()))
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let handle = app.shutdown_handle();
    tokio::spawn(app.run_until_stopped());
    App {
        base,
        http: reqwest::Client::new(),
        clock,
        secrets,
        docs,
        db,
        handle,
        _redis: redis,
        _dirs: (secrets_dir, docs_dir),
    }
}

async fn json_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

impl App {
    fn pool(&self) -> &PgPool {
        &self.db.pool
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A resident living in `home`, with a token minted at the clock's now.
    fn resident(&self, person: &str, home: u32) -> String {
        self.secrets.mint(
            &PersonId::parse(person).unwrap(),
            PlaceCode::try_from(home).unwrap(),
            2,
            self.clock.now(),
            Duration::hours(2),
        )
    }

    fn key(&self, place: u32) -> String {
        match place {
            140_000 => self.secrets.province_admin.key.clone(),
            JINCHENG => self.secrets.jincheng_admin.key.clone(),
            TAIYUAN => self.secrets.taiyuan_admin.key.clone(),
            other => panic!("no key for {other}"),
        }
    }

    async fn admin_post(&self, place: u32, path: &str, body: Value) -> (u16, Value) {
        json_of(
            self.http
                .post(self.url(path))
                .header("x-api-key", self.key(place))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn admin_get(&self, place: u32, path: &str) -> (u16, Value) {
        json_of(
            self.http
                .get(self.url(path))
                .header("x-api-key", self.key(place))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        json_of(
            self.http
                .get(self.url(path))
                .bearer_auth(token)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn upload(&self, token: &str, content_type: &str, bytes: Vec<u8>) -> (u16, Value) {
        json_of(
            self.http
                .post(self.url("/v1/trade-in/documents"))
                .bearer_auth(token)
                .header("content-type", content_type)
                .body(bytes)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn apply(&self, token: &str, body: &Value) -> (u16, Value) {
        json_of(
            self.http
                .post(self.url("/v1/trade-in/applications"))
                .bearer_auth(token)
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// A program of the province (50% of each city's spending, 50 million yuan pool) with
    /// the seed's scheme: 2023-07-01..=2023-12-31, 2,000 yuan for a transfer, 3,000 for a
    /// scrap, and `rate` if given.
    async fn program_with_scheme(&self, rate: Option<u32>) -> i64 {
        let (status, program) = self
            .admin_post(
                140_000,
                "/v1/admin/programs",
                json!({"name": "汽车以旧换新 2023 下半年", "funder_place": 140000,
                       "province_ratio_bp": 5000, "pool": 5_000_000_000_i64,
                       "refund_policy": "forfeit"}),
            )
            .await;
        assert_eq!(status, 201, "{program}");
        let id = program["id"].as_i64().unwrap();
        let mut scheme = json!({"program_id": id, "opens_on": "2023-07-01", "closes_on": "2023-12-31",
                                "transfer_cap_fen": 200_000, "scrap_cap_fen": 300_000});
        if let Some(rate) = rate {
            scheme["price_rate_bp"] = json!(rate);
        }
        let (status, body) = self
            .admin_post(140_000, "/v1/admin/trade-in/schemes", scheme)
            .await;
        assert_eq!(status, 201, "{body}");
        id
    }

    /// Uploads a small PDF unique to `tag` and answers its hash.
    async fn pdf(&self, token: &str, tag: &str) -> String {
        let (status, body) = self.upload(token, "application/pdf", pdf_bytes(tag)).await;
        assert!(status == 201 || status == 200, "{status} {body}");
        body["sha256"].as_str().unwrap().to_owned()
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.pool())
            .await
            .unwrap()
    }

    async fn lines(
        &self,
    ) -> Vec<(
        String,
        String,
        i64,
        i32,
        Option<i32>,
        String,
        String,
        i64,
        Value,
    )> {
        sqlx::query_as(
            "SELECT source, kind, program_id, city, county, payee_kind, person_id, amount_fen, detail
             FROM subsidy_lines ORDER BY source",
        )
        .fetch_all(self.pool())
        .await
        .unwrap()
    }

    fn files(&self) -> Vec<String> {
        match std::fs::read_dir(&self.docs) {
            Ok(dir) => {
                let mut names: Vec<String> = dir
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                names
            }
            Err(_) => Vec::new(),
        }
    }

    async fn stop(self) {
        self.handle.stop().await;
    }
}

fn pdf_bytes(tag: &str) -> Vec<u8> {
    format!("%PDF-1.4\n% trade-in paper: {tag}\n%%EOF\n").into_bytes()
}

/// A valid VIN numbered `n` (the check digit put in 9th place).
fn vin(prefix: &str, n: u32) -> String {
    let mut v = format!("{prefix}0KS{n:06}");
    assert_eq!(v.len(), 17, "{v}");
    let check = Vin::check_digit(&v).unwrap();
    v.replace_range(8..9, &check.to_string());
    v
}

/// A credit code registered in `place` (characters 3–8), with its check character.
fn credit(place: u32, tail: &str) -> String {
    let head = format!("91{place}MA0K{tail}");
    let check = CreditCode::check_char(&head).unwrap();
    format!("{head}{check}")
}

/// Everything one application needs, numbered.
#[derive(Clone)]
struct Papers {
    kind: &'static str,
    old_vin: String,
    new_vin: String,
    invoice_no: String,
    price_fen: i64,
    invoice_date: &'static str,
    certificate: String,
    invoice: String,
}

impl Papers {
    fn numbered(n: u32, kind: &'static str, certificate: &str, invoice: &str) -> Papers {
        Papers {
            kind,
            old_vin: vin("LFV2A21K", n),
            new_vin: vin("LSGKB54H", n),
            invoice_no: format!("2314200000{n:010}"),
            price_fen: 15_000_000,
            invoice_date: "2023-08-10",
            certificate: certificate.to_owned(),
            invoice: invoice.to_owned(),
        }
    }

    fn body(&self, id: Uuid, program: i64) -> Value {
        let mut body = self.amendment();
        body["application_id"] = json!(id);
        body["program_id"] = json!(program);
        body
    }

    fn amendment(&self) -> Value {
        let certifier = if self.kind == "transfer" {
            json!({"name": "晋城市诚信二手车交易市场有限公司", "credit_code": credit(JINCHENG, "2HC01")})
        } else {
            json!({"name": "晋城市报废汽车回收拆解有限公司", "credit_code": credit(JINCHENG, "BF001")})
        };
        json!({
            "kind": self.kind,
            "old_car": {"vin": self.old_vin, "plate": "晋E12345"},
            "certifier": certifier,
            "certificate_sha256": self.certificate,
            "new_car": {
                "invoice_no": self.invoice_no,
                "invoice_date": self.invoice_date,
                "vin": self.new_vin,
                "price_fen": self.price_fen,
                "dealer": {"name": "晋城市长城汽车销售服务有限公司", "credit_code": credit(JINCHENG, "4D001")},
                "invoice_sha256": self.invoice,
            }
        })
    }
}

/// A resident with their two papers uploaded, ready to apply.
async fn applicant(app: &App, person: &str, home: u32) -> (String, String, String) {
    let token = app.resident(person, home);
    let certificate = app.pdf(&token, &format!("certificate of {person}")).await;
    let invoice = app.pdf(&token, &format!("invoice of {person}")).await;
    (token, certificate, invoice)
}

// ---------------------------------------------------------------- worked examples

#[tokio::test]
async fn a_transfer_gets_2000_yuan_and_a_scrap_3000_yuan_each_paid_as_one_subsidy_line() {
    // 004 §二(一): 转出 … 每辆最高2000元; 报废 … 每辆最高3000元. Two residents of Jincheng
    // (one in the city, one in Yangcheng county) each buy a 150,000-yuan car.
    let app = spawn(|_| {}).await;
    let program = app.program_with_scheme(None).await;
    let (a_token, a_cert, a_inv) = applicant(&app, "R-transfer", JINCHENG).await;
    let (b_token, b_cert, b_inv) = applicant(&app, "R-scrap", YANGCHENG).await;
    let transfer = Papers::numbered(1, "transfer", &a_cert, &a_inv);
    let scrap = Papers::numbered(2, "scrap", &b_cert, &b_inv);
    let (a_id, b_id) = (Uuid::new_v4(), Uuid::new_v4());

    let (status, a) = app.apply(&a_token, &transfer.body(a_id, program)).await;
    assert_eq!(status, 201, "{a}");
    assert_eq!(
        (a["status"].as_str(), a["amount_fen"].as_i64()),
        (Some("submitted"), Some(200_000))
    );
    let (status, b) = app.apply(&b_token, &scrap.body(b_id, program)).await;
    assert_eq!(status, 201, "{b}");
    assert_eq!(b["amount_fen"], 300_000);
    assert_eq!(
        (b["city"].as_i64(), b["county"].as_i64()),
        (Some(140_500), Some(140_522))
    );
    assert!(
        app.lines().await.is_empty(),
        "only an approval creates the payable"
    );

    app.clock.advance(Duration::hours(3));
    let approved_at = app.clock.now();
    for id in [a_id, b_id] {
        let (status, body) = app
            .admin_post(
                JINCHENG,
                &format!("/v1/admin/trade-in/applications/{id}/approve"),
                json!({}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "approved");
        assert_eq!(body["history"].as_array().unwrap().len(), 2);
        assert_eq!(body["history"][1]["actor"], "jincheng-city");
        assert_eq!(body["history"][1]["role"], "city");
        assert_eq!(body["history"][1]["place"], 140_500);
    }

    let lines = app.lines().await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    let by_source = |id: Uuid| {
        lines
            .iter()
            .find(|l| l.0 == format!("trade_in:{id}"))
            .cloned()
            .unwrap()
    };
    let (_, kind, prog, city, county, payee, person, amount, detail) = by_source(a_id);
    assert_eq!(
        (
            kind.as_str(),
            prog,
            city,
            county,
            payee.as_str(),
            person.as_str(),
            amount
        ),
        (
            "trade_in",
            program,
            140_500,
            None,
            "resident",
            "R-transfer",
            200_000
        )
    );
    assert_eq!(
        detail,
        json!({"kind": "transfer", "old_vin": transfer.old_vin, "new_vin": transfer.new_vin,
               "invoice_no": transfer.invoice_no})
    );
    let (_, _, _, city, county, _, person, amount, detail) = by_source(b_id);
    assert_eq!(
        (city, county, person.as_str(), amount),
        (140_500, Some(140_522), "R-scrap", 300_000)
    );
    assert_eq!(detail["kind"], "scrap");
    let counted: Vec<DateTime<Utc>> = sqlx::query_scalar("SELECT counted_at FROM subsidy_lines")
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert!(counted.iter().all(|at| *at == approved_at), "{counted:?}");
    let total: i64 = app
        .count("SELECT sum(amount_fen)::int8 FROM subsidy_lines")
        .await;
    assert_eq!(total, 500_000, "2,000 + 3,000 yuan");

    // The residents see their approved subsidies (signed in again: hours have passed).
    let a_token = app.resident("R-transfer", JINCHENG);
    let (status, mine) = app.get(&a_token, "/v1/me/trade-in/applications").await;
    assert_eq!(status, 200);
    assert_eq!(mine[0]["status"], "approved");
    assert_eq!(mine[0]["amount_fen"], 200_000);
    assert!(mine[0]["subsidy_line_id"].is_string());
    app.stop().await;
}

#[tokio::test]
async fn a_rate_of_the_price_makes_a_cheaper_car_get_less_than_the_cap() {
    // A scheme that also pays at most 1% of the new car's price: a 120,000-yuan car gets
    // 1,200 yuan (under the 2,000-yuan cap), a 350,000-yuan car the full 3,000 for a scrap.
    let app = spawn(|_| {}).await;
    let program = app.program_with_scheme(Some(100)).await;
    let (token, cert, inv) = applicant(&app, "R-cheap", JINCHENG).await;
    let mut cheap = Papers::numbered(1, "transfer", &cert, &inv);
    cheap.price_fen = 12_000_000;
    let (status, body) = app
        .apply(&token, &cheap.body(Uuid::new_v4(), program))
        .await;
    assert_eq!(
        (status, body["amount_fen"].as_i64()),
        (201, Some(120_000)),
        "{body}"
    );
    let (token, cert, inv) = applicant(&app, "R-dear", JINCHENG).await;
    let mut dear = Papers::numbered(2, "scrap", &cert, &inv);
    dear.price_fen = 35_000_000;
    let (status, body) = app.apply(&token, &dear.body(Uuid::new_v4(), program)).await;
    assert_eq!(
        (status, body["amount_fen"].as_i64()),
        (201, Some(300_000)),
        "{body}"
    );
    let id = body["id"].as_str().unwrap().to_owned();
    let (_, approved) = app
        .admin_post(
            140_000,
            &format!("/v1/admin/trade-in/applications/{id}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(approved["status"], "approved", "{approved}");
    assert_eq!(app.lines().await[0].7, 300_000);
    app.stop().await;
}

// ---------------------------------------------------------------- the window

#[tokio::test]
async fn applications_outside_the_second_half_of_2023_are_refused_with_the_dates() {
    let app = spawn(|_| {}).await;
    let program = app.program_with_scheme(None).await;
    let (_, cert, inv) = applicant(&app, "R-late", JINCHENG).await;
    let papers = Papers::numbered(1, "scrap", &cert, &inv);

    // 2024-01-01 00:30 in Beijing is 2023-12-31 16:30 UTC: already outside.
    app.clock.set(
        Utc.with_ymd_and_hms(2023, 12, 31, 16, 30, 0)
            .single()
            .unwrap(),
    );
    let token = app.resident("R-late", JINCHENG);
    let (status, body) = app
        .apply(&token, &papers.body(Uuid::new_v4(), program))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "OUTSIDE_SCHEME_WINDOW");
    assert_eq!(body["details"]["opens_on"], "2023-07-01");
    assert_eq!(body["details"]["closes_on"], "2023-12-31");
    assert_eq!(body["details"]["date"], "2024-01-01");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("2023-07-01") && message.contains("2023-12-31"),
        "{message}"
    );

    // The day before the window opens (2023-06-30 23:59 Beijing).
    app.clock.set(
        Utc.with_ymd_and_hms(2023, 6, 30, 15, 59, 0)
            .single()
            .unwrap(),
    );
    let token = app.resident("R-late", JINCHENG);
    let mut early = papers.clone();
    early.invoice_date = "2023-06-30";
    let (status, body) = app
        .apply(&token, &early.body(Uuid::new_v4(), program))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("OUTSIDE_SCHEME_WINDOW")),
        "{body}"
    );
    assert_eq!(body["details"]["date"], "2023-06-30");

    // Inside the window, a car bought before it is refused too (the invoice's date).
    app.clock.set(mid_2023());
    let token = app.resident("R-late", JINCHENG);
    let (status, body) = app
        .apply(&token, &early.body(Uuid::new_v4(), program))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("OUTSIDE_SCHEME_WINDOW")),
        "{body}"
    );
    assert_eq!(body["details"]["field"], "new_car.invoice_date");
    assert_eq!(body["details"]["opens_on"], "2023-07-01");
    assert_eq!(
        app.count("SELECT count(*) FROM trade_in_applications")
            .await,
        0
    );

    // The first day of the window, from its first minute, is in.
    app.clock.set(
        Utc.with_ymd_and_hms(2023, 6, 30, 16, 0, 0)
            .single()
            .unwrap(),
    );
    let token = app.resident("R-late", JINCHENG);
    let mut first_day = papers.clone();
    first_day.invoice_date = "2023-07-01";
    let (status, body) = app
        .apply(&token, &first_day.body(Uuid::new_v4(), program))
        .await;
    assert_eq!(status, 201, "{body}");
    app.stop().await;
}

// ---------------------------------------------------------------- one subsidy per car and invoice

/// `n` residents racing one submission each; `vary` makes each one's papers (all share
/// what `vary` leaves alone). Answers the statuses and codes.
async fn race(
    app: &App,
    program: i64,
    n: u32,
    vary: impl Fn(u32, &mut Papers),
) -> Vec<(u16, Value)> {
    let mut prepared = Vec::new();
    for i in 0..n {
        let person = format!("R-race-{i}");
        let (token, cert, inv) = applicant(app, &person, JINCHENG).await;
        let mut papers = Papers::numbered(100 + i, "transfer", &cert, &inv);
        vary(i, &mut papers);
        prepared.push((token, papers.body(Uuid::new_v4(), program)));
    }
    join_all(prepared.iter().map(|(token, body)| app.apply(token, body))).await
}

fn tally(results: &[(u16, Value)]) -> (usize, Vec<String>) {
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    let refused = results
        .iter()
        .filter(|(s, _)| *s != 201)
        .map(|(s, b)| format!("{s} {}", b["code"].as_str().unwrap_or("?")))
        .collect();
    (created, refused)
}

#[tokio::test]
async fn racing_submissions_of_one_old_car_new_car_or_invoice_are_accepted_once() {
    let app = spawn(|_| {}).await;
    let program = app.program_with_scheme(None).await;
    const N: u32 = 24;

    // 24 different people, the same old car.
    let shared_old = vin("LFV2A21K", 9_001);
    let results = race(&app, program, N, |_, p| p.old_vin = shared_old.clone()).await;
    let (created, refused) = tally(&results);
    assert_eq!(created, 1, "{refused:?}");
    assert!(
        refused.iter().all(|r| r == "409 OLD_CAR_ALREADY_CLAIMED"),
        "{refused:?}"
    );

    // … the same new car (fresh old cars).
    let shared_new = vin("LSGKB54H", 9_002);
    let results = race(&app, program, N, |i, p| {
        p.old_vin = vin("LFV2A21K", 20_000 + i);
        p.new_vin = shared_new.clone();
        p.invoice_no = format!("NEWCAR{i:010}");
    })
    .await;
    let (created, refused) = tally(&results);
    assert_eq!(created, 1, "{refused:?}");
    assert!(
        refused.iter().all(|r| r == "409 NEW_CAR_ALREADY_CLAIMED"),
        "{refused:?}"
    );

    // … the same invoice (fresh cars).
    let results = race(&app, program, N, |i, p| {
        p.old_vin = vin("LFV2A21K", 30_000 + i);
        p.new_vin = vin("LSGKB54H", 30_000 + i);
        p.invoice_no = "23142000000099990001".into();
    })
    .await;
    let (created, refused) = tally(&results);
    assert_eq!(created, 1, "{refused:?}");
    assert!(
        refused.iter().all(|r| r == "409 INVOICE_ALREADY_CLAIMED"),
        "{refused:?}"
    );

    assert_eq!(
        app.count("SELECT count(*) FROM trade_in_applications")
            .await,
        3
    );
    assert_eq!(
        app.count("SELECT count(*) FROM trade_in_reviews WHERE action = 'submit'")
            .await,
        3,
        "a refused submission writes no history either"
    );
    app.stop().await;
}

#[tokio::test]
async fn one_person_retrying_one_application_id_gets_one_application() {
    let app = spawn(|_| {}).await;
    let program = app.program_with_scheme(None).await;
    let (token, cert, inv) = applicant(&app, "R-retry", JINCHENG).await;
    let papers = Papers::numbered(1, "scrap", &cert, &inv);
    let id = Uuid::new_v4();
    let body = papers.body(id, program);
    let results = join_all((0..16).map(|_| app.apply(&token, &body))).await;
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    let replayed = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!((created, replayed), (1, 15), "{results:?}");
    assert!(results.iter().all(|(_, b)| b["id"] == json!(id)));
    assert_eq!(
        app.count("SELECT count(*) FROM trade_in_applications")
            .await,
        1
    );

    // The same id for other papers, or by another person, is a conflict.
    let mut other = papers.clone();
    other.price_fen += 100;
    let (status, body) = app.apply(&token, &other.body(id, program)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("APPLICATION_ID_CONFLICT")),
        "{body}"
    );
    let (stranger, s_cert, s_inv) = applicant(&app, "R-stranger", JINCHENG).await;
    let theirs = Papers::numbered(2, "scrap", &s_cert, &s_inv);
    let (status, body) = app.apply(&stranger, &theirs.body(id, program)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("APPLICATION_ID_CONFLICT")),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_rejection_frees_the_car_and_the_invoice_for_a_new_application() {
    let app = spawn(|_| {}).await;
    let program = app.program_with_scheme(None).await;
    let (token, cert, inv) = applicant(&app, "R-again", YANGCHENG).await;
    let papers = Papers::numbered(1, "transfer", &cert, &inv);
    let first = Uuid::new_v4();
    let (status, _) = app.apply(&token, &papers.body(first, program)).await;
    assert_eq!(status, 201);
    let (status, body) = app
        .apply(&token, &papers.body(Uuid::new_v4(), program))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("OLD_CAR_ALREADY_CLAIMED")),
        "{body}"
    );

    let (status, body) = app
        .admin_post(
            JINCHENG,
            &format!("/v1/admin/trade-in/applications/{first}/reject"),
            json!({"reason": "过户证明上的车主姓名与申请人不符"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "rejected");
    let (_, mine) = app.get(&token, "/v1/me/trade-in/applications").await;
    assert_eq!(
        mine[0]["rejection_reason"],
        "过户证明上的车主姓名与申请人不符"
    );

    let second = Uuid::new_v4();
    let (status, body) = app.apply(&token, &papers.body(second, program)).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .admin_post(
            JINCHENG,
            &format!("/v1/admin/trade-in/applications/{second}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("approved")),
        "{body}"
    );
    // A rejected application cannot be approved afterwards.
    let (status, body) = app
        .admin_post(
            JINCHENG,
            &format!("/v1/admin/trade-in/applications/{first}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("APPLICATION_STATUS_CONFLICT")),
        "{body}"
    );
    assert_eq!(app.lines().await.len(), 1);
    app.stop().await;
}

// ---------------------------------------------------------------- review

#[tokio::test]
async fn another_city_s_officer_can_neither_see_nor_decide_and_nothing_changes() {
    let app = spawn(|_| {}).await;
    let program = app.program_with_scheme(None).await;
    let (token, cert, inv) = applicant(&app, "R-scope", YANGCHENG).await;
    let id = Uuid::new_v4();
    let (status, _) = app
        .apply(
            &token,
            &Papers::numbered(1, "scrap", &cert, &inv).body(id, program),
        )
        .await;
    assert_eq!(status, 201);
    let path = format!("/v1/admin/trade-in/applications/{id}");

    let (status, body) = app.admin_get(TAIYUAN, &path).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("FORBIDDEN_PLACE")),
        "{body}"
    );
    for (action, body) in [
        ("approve", json!({})),
        ("reject", json!({"reason": "no"})),
        ("request-more", json!({"what": "everything"})),
    ] {
        let (status, answer) = app
            .admin_post(TAIYUAN, &format!("{path}/{action}"), body)
            .await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (403, Some("FORBIDDEN_PLACE")),
            "{action}: {answer}"
        );
    }
    let (status, body) = app
        .admin_get(TAIYUAN, &format!("/v1/admin/trade-in/documents/{cert}"))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("FORBIDDEN_PLACE")),
        "{body}"
    );
    let (status, queue) = app
        .admin_get(TAIYUAN, "/v1/admin/trade-in/applications")
        .await;
    assert_eq!(
        (status, queue.as_array().map(Vec::len)),
        (200, Some(0)),
        "{queue}"
    );

    // Nothing changed.
    assert_eq!(
        app.count("SELECT count(*) FROM trade_in_applications WHERE status = 'submitted'")
            .await,
        1
    );
    assert_eq!(app.count("SELECT count(*) FROM trade_in_reviews").await, 1);
    assert!(app.lines().await.is_empty());

    // Jincheng (the county's city) and the province see it, with its documents.
    let (status, queue) = app
        .admin_get(JINCHENG, "/v1/admin/trade-in/applications?status=submitted")
        .await;
    assert_eq!(
        (status, queue.as_array().map(Vec::len)),
        (200, Some(1)),
        "{queue}"
    );
    let (status, detail) = app.admin_get(140_000, &path).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["documents"][0]["role"], "certificate");
    assert_eq!(detail["documents"][0]["content_type"], "application/pdf");
    let bytes = app
        .http
        .get(app.url(&format!("/v1/admin/trade-in/documents/{cert}")))
        .header("x-api-key", app.key(JINCHENG))
        .send()
        .await
        .unwrap();
    assert_eq!(bytes.status(), 200);
    assert_eq!(bytes.headers()["content-type"], "application/pdf");
    assert_eq!(
        bytes.bytes().await.unwrap().to_vec(),
        pdf_bytes("certificate of R-scope")
    );
    app.stop().await;
}

#[tokio::test]
async fn reviewers_approving_at_once_write_one_subsidy_line() {
    let app = spawn(|_| {}).await;
    let program = app.program_with_scheme(None).await;
    let (token, cert, inv) = applicant(&app, "R-twice", JINCHENG).await;
    let id = Uuid::new_v4();
    let (status, _) = app
        .apply(
            &token,
            &Papers::numbered(1, "transfer", &cert, &inv).body(id, program),
        )
        .await;
    assert_eq!(status, 201);
    let path = format!("/v1/admin/trade-in/applications/{id}/approve");
    let results = join_all((0..16).map(|i| {
        let place = if i % 2 == 0 { JINCHENG } else { 140_000 };
        app.admin_post(place, &path, json!({}))
    }))
    .await;
    assert!(
        results
            .iter()
            .all(|(s, b)| *s == 200 && b["status"] == "approved"),
        "{results:?}"
    );
    let lines = app.lines().await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0].7, 200_000);
    assert_eq!(
        app.count("SELECT count(*) FROM trade_in_reviews WHERE action = 'approve'")
            .await,
        1
    );
    // Rejecting or asking for more after the approval is refused.
    let (status, body) = app
        .admin_post(
            JINCHENG,
            &format!("/v1/admin/trade-in/applications/{id}/reject"),
            json!({"reason": "late"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("APPLICATION_STATUS_CONFLICT")),
        "{body}"
    );
    assert_eq!(body["details"]["status"], "approved");
    app.stop().await;
}

#[tokio::test]
async fn a_request_for_more_is_answered_by_an_amendment_then_approved() {
    let app = spawn(|_| {}).await;
    let program = app.program_with_scheme(None).await;
    let (token, cert, inv) = applicant(&app, "R-more", JINCHENG).await;
    let id = Uuid::new_v4();
    let papers = Papers::numbered(1, "scrap", &cert, &inv);
    let (status, _) = app.apply(&token, &papers.body(id, program)).await;
    assert_eq!(status, 201);
    let path = format!("/v1/admin/trade-in/applications/{id}");
    let (status, body) = app
        .admin_post(
            JINCHENG,
            &format!("{path}/request-more"),
            json!({"what": "请上传《报废机动车回收证明》原件照片"}),
        )
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("needs_more")),
        "{body}"
    );
    let (_, mine) = app
        .get(&token, &format!("/v1/me/trade-in/applications/{id}"))
        .await;
    assert_eq!(mine["requested"], "请上传《报废机动车回收证明》原件照片");
    let (status, body) = app
        .admin_post(JINCHENG, &format!("{path}/approve"), json!({}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("APPLICATION_STATUS_CONFLICT")),
        "{body}"
    );

    // The resident uploads the new certificate and amends.
    let better = app.pdf(&token, "the scrapping certificate, original").await;
    let mut amended = papers.clone();
    amended.certificate = better.clone();
    let answer = app
        .http
        .put(app.url(&format!("/v1/trade-in/applications/{id}")))
        .bearer_auth(&token)
        .json(&amended.amendment())
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(answer).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["status"].as_str(), body["submissions"].as_i64()),
        (Some("submitted"), Some(2))
    );
    assert_eq!(body["certificate_sha256"], better.as_str());
    assert!(body["requested"].is_null());

    let (status, body) = app
        .admin_post(JINCHENG, &format!("{path}/approve"), json!({}))
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("approved")),
        "{body}"
    );
    let actions: Vec<&str> = body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["submit", "request_more", "resubmit", "approve"]);
    assert_eq!(app.lines().await.len(), 1);
    assert_eq!(app.lines().await[0].7, 300_000);
    app.stop().await;
}

// ---------------------------------------------------------------- bad input

#[tokio::test]
async fn bad_input_is_refused_with_a_code_and_nothing_is_written() {
    let app = spawn(|s| s.documents.max_bytes = 64 * 1024).await;
    let program = app.program_with_scheme(None).await;
    let token = app.resident("R-bad", JINCHENG);

    // Uploads: a type that is not a paper, bytes that are not what they claim, too big,
    // empty.
    let (status, body) = app.upload(&token, "text/plain", b"hello".to_vec()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (415, Some("UNSUPPORTED_MEDIA_TYPE")),
        "{body}"
    );
    assert_eq!(
        body["details"]["allowed"],
        json!(["application/pdf", "image/jpeg", "image/png"])
    );
    let (status, body) = app
        .upload(
            &token,
            "application/pdf",
            b"\x89PNG\r\n\x1a\n not a pdf".to_vec(),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (415, Some("DOCUMENT_CONTENT_MISMATCH")),
        "{body}"
    );
    let mut big = pdf_bytes("big");
    big.resize(64 * 1024 + 1, b' ');
    let (status, body) = app.upload(&token, "application/pdf", big).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("PAYLOAD_TOO_LARGE")),
        "{body}"
    );
    let (status, body) = app.upload(&token, "image/png", Vec::new()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("INVALID_FIELD")),
        "{body}"
    );
    assert!(app.files().is_empty(), "{:?}", app.files());
    assert_eq!(
        app.count("SELECT count(*) FROM trade_in_documents").await,
        0
    );

    // Applications.
    let cert = app.pdf(&token, "certificate").await;
    let inv = app.pdf(&token, "invoice").await;
    let good = Papers::numbered(1, "transfer", &cert, &inv);
    let mut bad_vin = good.body(Uuid::new_v4(), program);
    let mut wrong_check = good.old_vin.clone();
    let digit = if wrong_check.as_bytes()[8] == b'1' {
        "2"
    } else {
        "1"
    };
    wrong_check.replace_range(8..9, digit);
    bad_vin["old_car"]["vin"] = json!(wrong_check);
    let mut bad_plate = good.body(Uuid::new_v4(), program);
    bad_plate["old_car"]["plate"] = json!("晋E1234");
    let mut vin_with_o = good.body(Uuid::new_v4(), program);
    vin_with_o["new_car"]["vin"] = json!("LSGKB54HOKS000001");
    let mut unknown_doc = good.body(Uuid::new_v4(), program);
    unknown_doc["certificate_sha256"] = json!("ab".repeat(32));
    let mut negative = good.body(Uuid::new_v4(), program);
    negative["new_car"]["price_fen"] = json!(-1);
    let mut bad_kind = good.body(Uuid::new_v4(), program);
    bad_kind["kind"] = json!("lease");
    let mut future_invoice = good.body(Uuid::new_v4(), program);
    future_invoice["new_car"]["invoice_date"] = json!("2023-08-20");
    let mut dealer_elsewhere = good.body(Uuid::new_v4(), program);
    dealer_elsewhere["new_car"]["dealer"]["credit_code"] = json!(credit(110_105, "4D001"));
    let mut same_car = good.body(Uuid::new_v4(), program);
    same_car["new_car"]["vin"] = json!(good.old_vin);
    let mut no_scheme = good.body(Uuid::new_v4(), program);
    no_scheme["program_id"] = json!(program + 1000);
    let mut extra_field = good.body(Uuid::new_v4(), program);
    extra_field["bonus"] = json!(1);
    let cases: Vec<(&str, Value, u16, &str, Option<&str>)> = vec![
        (
            "check digit",
            bad_vin,
            400,
            "INVALID_FIELD",
            Some("old_car.vin"),
        ),
        (
            "plate",
            bad_plate,
            400,
            "INVALID_FIELD",
            Some("old_car.plate"),
        ),
        (
            "letter O",
            vin_with_o,
            400,
            "INVALID_FIELD",
            Some("new_car.vin"),
        ),
        (
            "unknown document",
            unknown_doc,
            404,
            "DOCUMENT_NOT_FOUND",
            Some("certificate_sha256"),
        ),
        (
            "negative price",
            negative,
            400,
            "INVALID_FIELD",
            Some("new_car.price_fen"),
        ),
        ("kind", bad_kind, 400, "INVALID_FIELD", Some("kind")),
        (
            "future invoice",
            future_invoice,
            400,
            "INVALID_FIELD",
            Some("new_car.invoice_date"),
        ),
        (
            "dealer in Beijing",
            dealer_elsewhere,
            422,
            "OUTSIDE_PROVINCE",
            Some("new_car.dealer.credit_code"),
        ),
        (
            "old car is the new car",
            same_car,
            400,
            "INVALID_FIELD",
            Some("new_car.vin"),
        ),
        (
            "no scheme",
            no_scheme,
            404,
            "TRADE_IN_SCHEME_NOT_FOUND",
            None,
        ),
        (
            "unknown field",
            extra_field,
            400,
            "INVALID_FIELD",
            Some("bonus"),
        ),
    ];
    for (what, body, status, code, field) in cases {
        let (got, answer) = app.apply(&token, &body).await;
        assert_eq!(
            (got, answer["code"].as_str()),
            (status, Some(code)),
            "{what}: {answer}"
        );
        if let Some(field) = field {
            assert_eq!(answer["details"]["field"], field, "{what}: {answer}");
        }
    }

    // Someone else's document cannot be cited.
    let other = app.resident("R-other", JINCHENG);
    let theirs = app.pdf(&other, "someone else's invoice").await;
    let mut borrowed = good.body(Uuid::new_v4(), program);
    borrowed["new_car"]["invoice_sha256"] = json!(theirs);
    let (status, body) = app.apply(&token, &borrowed).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("DOCUMENT_NOT_FOUND")),
        "{body}"
    );
    assert_eq!(body["details"]["field"], "new_car.invoice_sha256");

    // A resident of another province.
    let hebei = app.resident("R-hebei", 130_100);
    let h_cert = app.pdf(&hebei, "hebei certificate").await;
    let h_inv = app.pdf(&hebei, "hebei invoice").await;
    let (status, body) = app
        .apply(
            &hebei,
            &Papers::numbered(7, "scrap", &h_cert, &h_inv).body(Uuid::new_v4(), program),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("NOT_ELIGIBLE")),
        "{body}"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM trade_in_applications")
            .await,
        0
    );
    assert_eq!(app.count("SELECT count(*) FROM trade_in_reviews").await, 0);

    // Schemes: only the province, once, with sane terms.
    let scheme = |program: i64| {
        json!({"program_id": program, "opens_on": "2023-07-01", "closes_on": "2023-12-31",
               "transfer_cap_fen": 200_000, "scrap_cap_fen": 300_000})
    };
    let (status, body) = app
        .admin_post(JINCHENG, "/v1/admin/trade-in/schemes", scheme(program))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("FORBIDDEN_ROLE")),
        "{body}"
    );
    let (status, body) = app
        .admin_post(140_000, "/v1/admin/trade-in/schemes", scheme(program))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("TRADE_IN_SCHEME_EXISTS")),
        "{body}"
    );
    let mut backwards = scheme(program);
    backwards["closes_on"] = json!("2023-06-01");
    let (status, body) = app
        .admin_post(140_000, "/v1/admin/trade-in/schemes", backwards)
        .await;
    assert_eq!(
        (status, body["details"]["field"].as_str()),
        (400, Some("closes_on")),
        "{body}"
    );
    let mut zero = scheme(program);
    zero["scrap_cap_fen"] = json!(0);
    let (status, body) = app
        .admin_post(140_000, "/v1/admin/trade-in/schemes", zero)
        .await;
    assert_eq!(
        (status, body["details"]["field"].as_str()),
        (400, Some("scrap_cap_fen")),
        "{body}"
    );
    let (status, body) = app
        .admin_post(140_000, "/v1/admin/trade-in/schemes", scheme(987_654))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("PROGRAM_NOT_FOUND")),
        "{body}"
    );
    assert_eq!(app.count("SELECT count(*) FROM trade_in_schemes").await, 1);

    // Reviews: unknown application, empty reason.
    let (status, body) = app
        .admin_post(
            JINCHENG,
            &format!("/v1/admin/trade-in/applications/{}/approve", Uuid::new_v4()),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("APPLICATION_NOT_FOUND")),
        "{body}"
    );
    let (status, body) = app
        .admin_get(JINCHENG, "/v1/admin/trade-in/applications?status=done")
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("INVALID_FIELD")),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn documents_are_stored_once_by_their_hash() {
    let app = spawn(|_| {}).await;
    let a = app.resident("R-doc-a", JINCHENG);
    let b = app.resident("R-doc-b", JINCHENG);
    let png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR fake image body".to_vec();
    // The hash as PostgreSQL computes it, independently of the service.
    let expected: String = sqlx::query_scalar("SELECT encode(sha256($1), 'hex')")
        .bind(&png)
        .fetch_one(app.pool())
        .await
        .unwrap();

    let (status, first) = app.upload(&a, "image/png", png.clone()).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["sha256"], expected.as_str());
    assert_eq!(first["size_bytes"], png.len());
    let (status, again) = app.upload(&a, "image/png", png.clone()).await;
    assert_eq!(
        (status, again["created"].as_bool()),
        (200, Some(false)),
        "{again}"
    );
    assert_eq!(again["sha256"], first["sha256"]);
    assert_eq!(again["uploaded_at"], first["uploaded_at"]);
    let (status, theirs) = app
        .upload(&b, "image/png; name=scan.png", png.clone())
        .await;
    assert_eq!(
        (status, theirs["sha256"].as_str()),
        (201, Some(expected.as_str())),
        "{theirs}"
    );

    assert_eq!(
        app.files(),
        vec![expected.clone()],
        "one file, named by its hash, no temporary left"
    );
    assert_eq!(std::fs::read(app.docs.join(&expected)).unwrap(), png);
    assert_eq!(
        app.count("SELECT count(*) FROM trade_in_documents").await,
        2,
        "one row per uploader"
    );
    // Concurrent uploads of the same new bytes: still one file.
    let jpeg = [&[0xFF, 0xD8, 0xFF, 0xE0][..], b"JFIF fake"].concat();
    let shared = &app;
    let results = join_all((0..8).map(|i| {
        let app = shared;
        let token = app.resident(&format!("R-doc-{i}"), JINCHENG);
        let jpeg = jpeg.clone();
        async move { app.upload(&token, "image/jpeg", jpeg).await }
    }))
    .await;
    assert!(results.iter().all(|(s, _)| *s == 201), "{results:?}");
    assert_eq!(app.files().len(), 2, "{:?}", app.files());
    app.stop().await;
}

#[tokio::test]
async fn the_mapped_constraint_names_exist_in_the_schema() {
    let db = fresh_db().await;
    for name in voucher_store::pg::trade_in::mapped_constraints() {
        let found: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM pg_constraint WHERE conname = $1)
                  + (SELECT count(*) FROM pg_class WHERE relname = $1 AND relkind = 'i')",
        )
        .bind(name)
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert!(found >= 1, "{name} is not in the schema");
    }
}
