//! The authorisation matrix (issue 13, "Authorisation matrix"): every endpoint of every
//! service against every caller — no credentials, a resident, another resident, the owning
//! merchant's terminal, a terminal of another merchant, a revoked terminal, an officer of
//! another city, a county officer, the owning city's officer and a province officer — each
//! getting exactly the expected allow or deny.
//!
//! The matrix is generated from the route table. The operations are read from each running
//! service's OpenAPI document (the same document answers `405` for the methods a path does
//! not have), and the document is checked against the routes the source registers
//! (`.route("…")` / `web::resource("…")`), so a route added to a service without a row here
//! fails the test, and so does a row whose route is gone.
//!
//! A row is a string with one letter per caller, in the order of [`CALLERS`]:
//! `+` allowed (a 2xx, or a 409 when an earlier allowed call already changed the thing),
//! `u` 401 (not authenticated for this route), `f` 403 (authenticated, not allowed), `h` 404
//! (someone else's thing, indistinguishable from none). In each row the denied callers go
//! first, so nothing an allowed caller writes can hide what a denied caller would have done.
//! A denial must carry the error envelope with a code.

use crate::console_support::{self as cs, Console, Session};
use crate::stack_support::{self as ss, PairedTerminal, Stack};
use chrono::{DateTime, Duration, TimeZone, Utc};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use uuid::Uuid;
use voucher_core::trade_in::Vin;
use voucher_core::{CreditCode, ManualClock};

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// No credentials at all.
    Anonymous,
    /// Resident A, who owns the residents' things of the fixture.
    Resident,
    /// Resident B, of the same city.
    OtherResident,
    /// A terminal of the merchant that owns the terminal-side things.
    OwnTerminal,
    /// A terminal of another merchant of the same city and category.
    OtherMerchantTerminal,
    /// A revoked terminal of the owning merchant.
    RevokedTerminal,
    /// 太原 Taiyuan's officer (the things belong to 晋城 Jincheng).
    OtherCityOfficer,
    /// 阳城 Yangcheng's officer: a county of Jincheng (role `city` at a county's code).
    CountyOfficer,
    /// Jincheng's officer.
    CityOfficer,
    /// Shanxi's officer.
    ProvinceOfficer,
}

/// The columns of every row, in order.
const CALLERS: [Caller; 10] = [
    Caller::Anonymous,
    Caller::Resident,
    Caller::OtherResident,
    Caller::OwnTerminal,
    Caller::OtherMerchantTerminal,
    Caller::RevokedTerminal,
    Caller::OtherCityOfficer,
    Caller::CountyOfficer,
    Caller::CityOfficer,
    Caller::ProvinceOfficer,
];

/// Public routes: everyone is served.
const PUBLIC: &str = "++++++++++";
/// Residents' routes on things every resident has.
const RESIDENTS: &str = "u++uuuuuuu";
/// Residents' routes on resident A's things.
const RESIDENT_A: &str = "u+huuuuuuu";
/// Terminals' routes on the calling terminal's own things.
const TERMINALS: &str = "uuu++uuuuu";
/// Terminals' routes on the owning merchant's things.
const OWN_MERCHANT: &str = "uuu+huuuuu";
/// Officers' routes every officer may call (answers scoped to their place).
const OFFICERS: &str = "uuuuuu++++";
/// Officers' routes on Jincheng's things.
const JINCHENG: &str = "uuuuuuff++";
/// Officers' routes on a Jincheng merchant: to another place's officer it does not exist.
const JINCHENG_MERCHANT: &str = "uuuuuuhh++";
/// The province's own routes.
const PROVINCE_ONLY: &str = "uuuuuufff+";

/// The issuance and redemption services' rows, in the order they run (the terminal that
/// unpairs itself goes last).
const STACK_ROWS: &[(&str, &str)] = &[
    ("GET /healthz", PUBLIC),
    ("GET /readyz", PUBLIC),
    ("GET /metrics", PUBLIC),
    ("GET /openapi.json", PUBLIC),
    // issuance: public
    ("GET /v1/time", PUBLIC),
    ("GET /v1/keys", PUBLIC),
    ("POST /v1/dev/sign-in", PUBLIC),
    ("GET /v1/campaigns/{id}/rounds/{round_no}/lottery", PUBLIC),
    // issuance: residents
    ("GET /v1/campaigns", RESIDENTS),
    ("POST /v1/campaigns/{id}/claims", RESIDENTS),
    ("GET /v1/me/vouchers", RESIDENTS),
    ("GET /v1/me/history", RESIDENTS),
    ("GET /v1/me/vouchers/{voucher_id}/code", RESIDENT_A),
    ("GET /v1/me/vouchers/{voucher_id}/code-key", RESIDENT_A),
    (
        "POST /v1/me/vouchers/{voucher_id}/code-key/revoke",
        RESIDENT_A,
    ),
    (
        "POST /v1/campaigns/{id}/rounds/{round_no}/registrations",
        RESIDENTS,
    ),
    (
        "GET /v1/campaigns/{id}/rounds/{round_no}/registrations/me",
        RESIDENTS,
    ),
    ("GET /v1/trade-in/schemes", RESIDENTS),
    ("POST /v1/trade-in/documents", RESIDENTS),
    ("POST /v1/trade-in/applications", RESIDENTS),
    ("GET /v1/me/trade-in/applications", RESIDENTS),
    ("GET /v1/me/trade-in/applications/{id}", RESIDENT_A),
    ("PUT /v1/trade-in/applications/{id}", RESIDENT_A),
    // issuance: officers
    ("POST /v1/admin/programs", PROVINCE_ONLY),
    ("GET /v1/admin/programs", OFFICERS),
    ("GET /v1/admin/programs/{id}", OFFICERS),
    ("POST /v1/admin/campaigns", JINCHENG),
    ("GET /v1/admin/campaigns", OFFICERS),
    ("GET /v1/admin/campaigns/{id}", JINCHENG),
    ("GET /v1/admin/campaigns/{id}/counters", JINCHENG),
    ("POST /v1/admin/campaigns/{id}/rounds", JINCHENG),
    ("POST /v1/admin/campaigns/{id}/pause", JINCHENG),
    ("POST /v1/admin/campaigns/{id}/resume", JINCHENG),
    ("POST /v1/admin/campaigns/{id}/bulk-issuances", JINCHENG),
    (
        "POST /v1/admin/campaigns/{id}/rounds/{round_no}/draw",
        JINCHENG,
    ),
    ("GET /v1/campaigns/{id}/rounds/{round_no}/draw", PUBLIC),
    ("POST /v1/admin/trade-in/schemes", PROVINCE_ONLY),
    ("GET /v1/admin/trade-in/schemes", OFFICERS),
    ("GET /v1/admin/trade-in/applications", OFFICERS),
    ("GET /v1/admin/trade-in/applications/{id}", JINCHENG),
    ("GET /v1/admin/trade-in/documents/{sha256}", JINCHENG),
    (
        "POST /v1/admin/trade-in/applications/{id}/request-more",
        JINCHENG,
    ),
    ("POST /v1/admin/trade-in/applications/{id}/reject", JINCHENG),
    (
        "POST /v1/admin/trade-in/applications/{id}/approve",
        JINCHENG,
    ),
    // redemption: public
    ("GET /.well-known/voucher-keys", PUBLIC),
    ("POST /v1/terminal-pairings", PUBLIC),
    // redemption: terminals
    ("GET /v1/terminal/me", TERMINALS),
    ("POST /v1/quotes", TERMINALS),
    ("POST /v1/redemptions", TERMINALS),
    ("GET /v1/redemptions", TERMINALS),
    ("GET /v1/redemptions/{id}", OWN_MERCHANT),
    ("GET /v1/redemptions/by-order-ref/{order_ref}", OWN_MERCHANT),
    ("POST /v1/redemptions/{id}/reversals", OWN_MERCHANT),
    ("POST /v1/authorizations", TERMINALS),
    ("POST /v1/authorizations/{id}/capture", OWN_MERCHANT),
    ("POST /v1/authorizations/{id}/void", OWN_MERCHANT),
    // A restaurant's terminal may not report a scenic spot's ticket sales.
    ("POST /v1/ticket-sales", "uuu+fuuuuu"),
    ("POST /v1/ticket-sales/{id}/refunds", OWN_MERCHANT),
    // redemption: officers
    ("POST /v1/admin/merchants", JINCHENG),
    ("GET /v1/admin/merchants/{id}", JINCHENG_MERCHANT),
    ("POST /v1/admin/merchants/{id}/approvals", JINCHENG_MERCHANT),
    ("POST /v1/admin/merchants/{id}/pairings", JINCHENG_MERCHANT),
    ("POST /v1/admin/merchants/{id}/terminals", JINCHENG_MERCHANT),
    (
        "POST /v1/admin/merchants/{id}/terminals/{terminal}/rotate",
        JINCHENG_MERCHANT,
    ),
    (
        "POST /v1/admin/merchants/{id}/terminals/{terminal}/revoke",
        JINCHENG_MERCHANT,
    ),
    ("POST /v1/admin/programs/{id}/extra-rules", PROVINCE_ONLY),
    ("GET /v1/admin/programs/{id}/extra-rules", OFFICERS),
    ("POST /v1/admin/ticket-schemes", JINCHENG),
    ("GET /v1/admin/ticket-schemes", OFFICERS),
    ("POST /v1/terminal/unpair", TERMINALS),
];

/// The finance console's rows, in the order they run (signing out goes last).
const CONSOLE_ROWS: &[(&str, &str)] = &[
    ("GET /healthz", PUBLIC),
    ("GET /readyz", PUBLIC),
    ("GET /metrics", PUBLIC),
    ("GET /openapi.json", PUBLIC),
    // The credential is the body: an officer's own key signs in, anyone else's guess is 401.
    ("POST /v1/session", OFFICERS),
    // The dev identity provider (on in the demo only) lists and signs in any officer.
    ("GET /v1/session/dev", PUBLIC),
    ("POST /v1/session/dev", PUBLIC),
    ("GET /v1/session", OFFICERS),
    ("GET /v1/overview", OFFICERS),
    ("GET /v1/periods", OFFICERS),
    ("GET /v1/periods/{period}/files/{name}", OFFICERS),
    // A run holds every city's batches: a county reads only its own figures, not a run.
    ("GET /v1/runs/{run_id}", "uuuuuu+f++"),
    ("GET /v1/batches/{batch_id}", JINCHENG),
    ("GET /v1/batches/{batch_id}/merchants", JINCHENG),
    // The city confirms its batch; the province's step comes after, so it is refused here.
    ("POST /v1/batches/{batch_id}/confirm", "uuuuuuff+f"),
    ("GET /v1/review", OFFICERS),
    ("GET /v1/redemptions/{id}", JINCHENG),
    ("GET /v1/ops", OFFICERS),
    ("POST /v1/checks", PROVINCE_ONLY),
    ("GET /v1/audit", OFFICERS),
    ("GET /v1/advances", OFFICERS),
    ("POST /v1/advances", PROVINCE_ONLY),
    ("POST /v1/settlements", PROVINCE_ONLY),
    ("DELETE /v1/session", OFFICERS),
];

// ------------------------------------------------------------------ the route table

/// The routes a service's source registers: `(path)` of every `.route("…", …)` and
/// `web::resource("…")` in `files` (relative to the repository), plus the operations routes
/// every service gets from the platform.
fn registered_paths(files: &[&str]) -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut paths = BTreeSet::new();
    let mut sources: Vec<String> =
        vec![std::fs::read_to_string(root.join("services/platform/src/ops.rs")).unwrap()];
    for file in files {
        let path = root.join(file);
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                let entry = entry.unwrap().path();
                if entry.extension().is_some_and(|e| e == "rs") {
                    sources.push(std::fs::read_to_string(entry).unwrap());
                }
            }
        } else {
            sources.push(std::fs::read_to_string(path).unwrap());
        }
    }
    for source in sources {
        for opener in [".route(", "web::resource(", ".route(\n"] {
            for (at, _) in source.match_indices(opener) {
                let rest = source[at + opener.len()..].trim_start();
                if let Some(lit) = rest.strip_prefix('"') {
                    if let Some(end) = lit.find('"') {
                        if lit.starts_with('/') {
                            paths.insert(lit[..end].to_owned());
                        }
                    }
                }
            }
        }
    }
    paths
}

/// `METHOD path` of every operation of an OpenAPI document.
fn documented(doc: &Value) -> BTreeSet<String> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "put", "post", "delete", "patch"] {
            if item.get(method).is_some() {
                ops.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    ops
}

/// Every operation has exactly one row, every row an operation, and every route the source
/// registers is in a document. `/openapi.json` is the document itself and has its own row.
fn assert_rows_cover(
    service: &str,
    ops: &BTreeSet<String>,
    rows: &[(&str, &str)],
    registered: &BTreeSet<String>,
) {
    let mut with_document = ops.clone();
    with_document.insert("GET /openapi.json".into());
    let row_ops: BTreeSet<String> = rows.iter().map(|(op, _)| (*op).to_owned()).collect();
    assert_eq!(row_ops.len(), rows.len(), "{service}: a row appears twice");
    let missing: Vec<_> = with_document.difference(&row_ops).collect();
    let stale: Vec<_> = row_ops.difference(&with_document).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "{service}: operations without a row in the matrix: {missing:?}; rows without an operation: {stale:?}"
    );
    let doc_paths: BTreeSet<String> = with_document
        .iter()
        .map(|op| op.split_once(' ').unwrap().1.to_owned())
        .collect();
    let undocumented: Vec<_> = registered.difference(&doc_paths).collect();
    assert!(
        undocumented.is_empty(),
        "{service}: routes registered in the source but not in the OpenAPI document \
         (so not in the matrix): {undocumented:?}"
    );
}

/// Credentials are checked before anything of the request is read: without them, every
/// operation the document secures answers 401, even with path ids that do not parse, a
/// query that is missing and a body that is not JSON (so a stranger learns nothing of what a
/// valid request looks like).
async fn assert_credentials_first(
    http: &reqwest::Client,
    service: &str,
    base: &str,
    doc: &Value,
    failures: &mut Vec<String>,
) -> usize {
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "put", "post", "delete", "patch"] {
            let Some(op) = item.get(method) else { continue };
            let secured = op["security"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|r| r.as_object().is_some_and(|o| !o.is_empty()))
            });
            if !secured {
                continue;
            }
            let garbled: String = path
                .split('/')
                .map(|seg| {
                    if seg.starts_with('{') {
                        "not%20an%20id"
                    } else {
                        seg
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            let mut req = http.request(
                method.to_uppercase().parse().unwrap(),
                format!("{base}{garbled}"),
            );
            if method != "get" && method != "delete" {
                req = req
                    .header("content-type", "application/json")
                    .body("{not json");
            }
            let (status, body) = ss::json(req.send().await.unwrap()).await;
            checked += 1;
            if status != 401 || body["code"].as_str().is_none_or(str::is_empty) {
                failures.push(format!(
                    "{service}: {} {path} without credentials and with a garbled request: expected 401, got {status} {body}",
                    method.to_uppercase()
                ));
            }
        }
    }
    checked
}

// ------------------------------------------------------------------ requests

/// What to send.
struct Req {
    method: Method,
    path: String,
    body: Body,
    idempotency_key: Option<String>,
}

enum Body {
    None,
    Json(Value),
    Raw(&'static str, Vec<u8>),
}

impl Req {
    fn get(path: impl Into<String>) -> Req {
        Req {
            method: Method::GET,
            path: path.into(),
            body: Body::None,
            idempotency_key: None,
        }
    }

    fn post(path: impl Into<String>, body: Value) -> Req {
        Req {
            method: Method::POST,
            path: path.into(),
            body: Body::Json(body),
            idempotency_key: None,
        }
    }

    fn post_empty(path: impl Into<String>) -> Req {
        Req {
            method: Method::POST,
            path: path.into(),
            body: Body::None,
            idempotency_key: None,
        }
    }

    fn put(path: impl Into<String>, body: Value) -> Req {
        Req {
            method: Method::PUT,
            path: path.into(),
            body: Body::Json(body),
            idempotency_key: None,
        }
    }

    fn idempotent(mut self) -> Req {
        self.idempotency_key = Some(Uuid::new_v4().to_string());
        self
    }

    fn bytes(&self) -> Vec<u8> {
        match &self.body {
            Body::None => Vec::new(),
            Body::Json(v) => serde_json::to_vec(v).unwrap(),
            Body::Raw(_, b) => b.clone(),
        }
    }

    fn content_type(&self) -> Option<&'static str> {
        match &self.body {
            Body::None => None,
            Body::Json(_) => Some("application/json"),
            Body::Raw(t, _) => Some(t),
        }
    }
}

/// Whether `status` is what `expected` says.
fn matches(expected: char, status: u16) -> bool {
    match expected {
        '+' => (200..300).contains(&status) || status == 409,
        'u' => status == 401,
        'f' => status == 403,
        'h' => status == 404,
        other => panic!("unknown expectation {other:?}"),
    }
}

/// Runs one row: the denied callers first. Each mismatch is one line of `failures`.
async fn run_row<F, Fut>(op: &str, expected: &str, mut call: F, failures: &mut Vec<String>)
where
    F: FnMut(Caller) -> Fut,
    Fut: std::future::Future<Output = (u16, Value)>,
{
    let letters: Vec<char> = expected.chars().collect();
    assert_eq!(letters.len(), CALLERS.len(), "{op}: one letter per caller");
    let mut order: Vec<usize> = (0..CALLERS.len()).collect();
    order.sort_by_key(|&i| letters[i] == '+');
    for i in order {
        let caller = CALLERS[i];
        let (status, body) = call(caller).await;
        if !matches(letters[i], status) {
            failures.push(format!(
                "{op} as {caller:?}: expected {}, got {status} {body}",
                letters[i]
            ));
        } else if letters[i] != '+' && body["code"].as_str().is_none_or(str::is_empty) {
            failures.push(format!(
                "{op} as {caller:?}: a denial without the error envelope: {status} {body}"
            ));
        }
    }
}

// ------------------------------------------------------------------ the stack's fixture

/// 2023-08-15 12:00 Beijing: inside the trade-in and ticket windows the fixture configures.
fn mid_2023() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2023, 8, 15, 4, 0, 0).single().unwrap()
}

/// A credit code registered in `place`, with its check character.
fn credit(place: u32, tail: &str) -> String {
    let head = format!("91{place}MA0K{tail}");
    let check = CreditCode::check_char(&head).unwrap();
    format!("{head}{check}")
}

/// A valid VIN numbered `n`.
fn vin(prefix: &str, n: u32) -> String {
    let mut v = format!("{prefix}0KS{n:06}");
    let check = Vin::check_digit(&v).unwrap();
    v.replace_range(8..9, &check.to_string());
    v
}

fn pdf(tag: &str) -> Vec<u8> {
    format!("%PDF-1.4\n% authz matrix paper: {tag}\n%%EOF\n").into_bytes()
}

/// Both services on one record, with something of every kind owned by Jincheng, its
/// merchant `m-own` and resident A.
struct Fx {
    stack: Stack,
    clock: ManualClock,
    resident: String,
    other_resident: String,
    own: PairedTerminal,
    own_scenic: PairedTerminal,
    other: PairedTerminal,
    revoked: PairedTerminal,
    program: i64,
    campaign: i64,
    spare: i64,
    list_campaign: i64,
    lottery: i64,
    trade_in_program: i64,
    ticket_scheme: i64,
    ticket_programs: (i64, i64),
    voucher_a: String,
    /// Codes of vouchers no one has used yet.
    codes: Mutex<Vec<String>>,
    redemption: String,
    order_ref: String,
    holds: (String, String),
    ticket_sale: String,
    application: String,
    reviewed: [String; 3],
    document: String,
    victims: (String, String),
    seq: std::sync::atomic::AtomicU32,
}

impl Fx {
    fn next(&self) -> u32 {
        self.seq.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    }

    fn key(&self, caller: Caller) -> Option<String> {
        let s = &self.stack.secrets;
        match caller {
            Caller::OtherCityOfficer => Some(s.taiyuan_admin.key.clone()),
            Caller::CountyOfficer => Some(s.yangcheng_admin.key.clone()),
            Caller::CityOfficer => Some(s.jincheng_admin.key.clone()),
            Caller::ProvinceOfficer => Some(s.province_admin.key.clone()),
            _ => None,
        }
    }

    fn code(&self) -> String {
        self.codes
            .lock()
            .unwrap()
            .pop()
            .expect("enough spare vouchers")
    }

    /// A fresh voucher's code for a terminal; anyone else never gets as far as reading it.
    fn code_for(&self, caller: Caller) -> String {
        match caller {
            Caller::OwnTerminal | Caller::OtherMerchantTerminal | Caller::RevokedTerminal => {
                self.code()
            }
            _ => "not-a-code".into(),
        }
    }

    /// Sends `req` to `base` as `caller` (the owning terminal being `own`).
    async fn send(
        &self,
        base: &str,
        caller: Caller,
        own: &PairedTerminal,
        req: Req,
    ) -> (u16, Value) {
        let bytes = req.bytes();
        let mut builder = self
            .stack
            .http
            .request(req.method.clone(), format!("{base}{}", req.path));
        let terminal = match caller {
            Caller::OwnTerminal => Some(own),
            Caller::OtherMerchantTerminal => Some(&self.other),
            Caller::RevokedTerminal => Some(&self.revoked),
            _ => None,
        };
        if let Some(t) = terminal {
            let headers = voucher_core::signing::sign_request(
                &t.key_id,
                &t.secret,
                req.method.as_str(),
                &req.path,
                voucher_core::Clock::now(&self.clock).timestamp(),
                &bytes,
            )
            .unwrap();
            for (name, value) in headers {
                builder = builder.header(name, value);
            }
        }
        match caller {
            Caller::Resident => builder = builder.bearer_auth(&self.resident),
            Caller::OtherResident => builder = builder.bearer_auth(&self.other_resident),
            _ => {}
        }
        if let Some(key) = self.key(caller) {
            builder = builder.header("x-api-key", key);
        }
        if let Some(t) = req.content_type() {
            builder = builder.header("content-type", t).body(bytes);
        }
        if let Some(k) = &req.idempotency_key {
            builder = builder.header("idempotency-key", k);
        }
        ss::json(builder.send().await.unwrap()).await
    }

    async fn admin(&self, base: &str, key: &str, path: &str, body: Value) -> Value {
        let (status, body) = self.stack.admin_post(base, key, path, body).await;
        assert!((200..300).contains(&status), "{path}: {status} {body}");
        body
    }

    /// Papers for a trade-in application numbered `n`, uploaded by `token`.
    async fn application_body(&self, token: &str, n: u32) -> Value {
        let mut hashes = Vec::new();
        for what in ["certificate", "invoice"] {
            let (status, body) = ss::json(
                self.stack
                    .http
                    .post(format!("{}/v1/trade-in/documents", self.stack.issuance))
                    .bearer_auth(token)
                    .header("content-type", "application/pdf")
                    .body(pdf(&format!("{what} {n}")))
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert!(status == 201 || status == 200, "{status} {body}");
            hashes.push(body["sha256"].as_str().unwrap().to_owned());
        }
        json!({
            "application_id": Uuid::new_v4(), "program_id": self.trade_in_program,
            "kind": "transfer",
            "old_car": {"vin": vin("LFV2A21K", n), "plate": "晋E12345"},
            "certifier": {"name": "晋城市诚信二手车交易市场有限公司", "credit_code": credit(140_500, "2HC01")},
            "certificate_sha256": hashes[0],
            "new_car": {
                "invoice_no": format!("2314200000{n:010}"), "invoice_date": "2023-08-10",
                "vin": vin("LSGKB54H", n), "price_fen": 15_000_000,
                "dealer": {"name": "晋城市长城汽车销售服务有限公司", "credit_code": credit(140_500, "4D001")},
                "invoice_sha256": hashes[1],
            }
        })
    }

    async fn apply(&self, token: &str, n: u32) -> String {
        let body = self.application_body(token, n).await;
        let (status, created) = ss::json(
            self.stack
                .http
                .post(format!("{}/v1/trade-in/applications", self.stack.issuance))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        created["application_id"]
            .as_str()
            .or(created["id"].as_str())
            .unwrap()
            .to_owned()
    }

    async fn new() -> Fx {
        let now = mid_2023();
        let clock = ManualClock::new(now);
        let stack = ss::start(Arc::new(clock.clone())).await;
        let province = stack.secrets.province_admin.key.clone();
        let jincheng = stack.secrets.jincheng_admin.key.clone();
        let (program, campaign) = stack
            .catering_campaign(100, now - Duration::minutes(1))
            .await;
        let iss = stack.issuance.clone();
        let rdm = stack.redemption.clone();
        let campaign_spec = |name: &str, distribution: &str, rounds: Value| {
            json!({
                "program_id": program, "name": name, "owner_place": 140500,
                "category": "catering", "rule": {"type": "threshold", "min_spend": 10000, "off": 2000},
                "stock": 50, "per_person_limit": 1, "rounds": rounds,
                "validity": {"days_after_claim": 7}, "budget": 10_000_000,
                "eligibility": {"places": [140500], "min_real_name_level": 1}, "distribution": distribution})
        };
        let tmp = Fx {
            stack,
            clock: clock.clone(),
            resident: String::new(),
            other_resident: String::new(),
            own: PairedTerminal {
                key_id: String::new(),
                secret: String::new(),
            },
            own_scenic: PairedTerminal {
                key_id: String::new(),
                secret: String::new(),
            },
            other: PairedTerminal {
                key_id: String::new(),
                secret: String::new(),
            },
            revoked: PairedTerminal {
                key_id: String::new(),
                secret: String::new(),
            },
            program,
            campaign,
            spare: 0,
            list_campaign: 0,
            lottery: 0,
            trade_in_program: 0,
            ticket_scheme: 0,
            ticket_programs: (0, 0),
            voucher_a: String::new(),
            codes: Mutex::new(Vec::new()),
            redemption: String::new(),
            order_ref: String::new(),
            holds: (String::new(), String::new()),
            ticket_sale: String::new(),
            application: String::new(),
            reviewed: [String::new(), String::new(), String::new()],
            document: String::new(),
            victims: (String::new(), String::new()),
            seq: std::sync::atomic::AtomicU32::new(100),
        };
        let mut fx = tmp;
        let spare = fx
            .admin(
                &iss,
                &jincheng,
                "/v1/admin/campaigns",
                campaign_spec(
                    "晋城备用券",
                    "claim",
                    json!([{"round_no": 1, "starts_at": now + Duration::days(1), "quantity": 50}]),
                ),
            )
            .await;
        fx.spare = spare["id"].as_i64().unwrap();
        let list = fx
            .admin(
                &iss,
                &jincheng,
                "/v1/admin/campaigns",
                campaign_spec("晋城工会券", "list", json!([])),
            )
            .await;
        fx.list_campaign = list["id"].as_i64().unwrap();
        // Half an hour on, round 1 has closed its registration (it can be drawn) and round 2
        // takes registrations. Everything after this reads the clock then.
        let lottery = fx
            .admin(&iss, &jincheng, "/v1/admin/campaigns", campaign_spec("晋城摇号券", "claim", json!([
                {"round_no": 1, "starts_at": now + Duration::hours(1), "quantity": 5, "mode": "lottery",
                 "registration_opens_at": now + Duration::minutes(1), "registration_closes_at": now + Duration::minutes(2)},
                {"round_no": 2, "starts_at": now + Duration::hours(4), "quantity": 5, "mode": "lottery",
                 "registration_opens_at": now + Duration::minutes(1), "registration_closes_at": now + Duration::hours(3)}
            ])))
            .await;
        fx.lottery = lottery["id"].as_i64().unwrap();
        clock.advance(Duration::minutes(30));

        // Residents: A and B, and helpers whose vouchers the terminals spend.
        fx.resident = fx.stack.sign_in("AUTHZ-A").await;
        fx.other_resident = fx.stack.sign_in("AUTHZ-B").await;
        fx.voucher_a = fx.stack.claim(&fx.resident, campaign).await;
        let mut codes = Vec::new();
        for i in 0..16 {
            let token = fx.stack.sign_in(&format!("AUTHZ-H{i:02}")).await;
            let voucher = fx.stack.claim(&token, campaign).await;
            let (status, code) = fx
                .stack
                .resident_get(&token, &format!("/v1/me/vouchers/{voucher}/code"))
                .await;
            assert_eq!(status, 200, "{code}");
            codes.push(code["code"].as_str().unwrap().to_owned());
        }
        fx.codes = Mutex::new(codes);

        // Merchants: m-own (its terminals: own, revoked and two victims of the officers'
        // rotate and revoke) and m-other, both Jincheng restaurants; s-own, a scenic spot.
        fx.stack.merchant("m-own", program).await;
        fx.stack.merchant("m-other", program).await;
        fx.own = fx.stack.pair("m-own").await;
        fx.other = fx.stack.pair("m-other").await;
        fx.revoked = fx.stack.pair("m-own").await;
        let mut terminal_ids = Vec::new();
        for _ in 0..3 {
            let t = fx
                .admin(
                    &rdm,
                    &jincheng,
                    "/v1/admin/merchants/m-own/terminals",
                    json!({}),
                )
                .await;
            terminal_ids.push(t["terminal_id"].as_str().unwrap().to_owned());
        }
        let revoked_id = {
            let (_, me) = fx
                .send(
                    &rdm,
                    Caller::RevokedTerminal,
                    &fx.own,
                    Req::get("/v1/terminal/me"),
                )
                .await;
            me["terminal_id"]
                .as_str()
                .expect("terminal/me names the terminal")
                .to_owned()
        };
        fx.admin(
            &rdm,
            &jincheng,
            &format!("/v1/admin/merchants/m-own/terminals/{revoked_id}/revoke"),
            json!({}),
        )
        .await;
        fx.victims = (terminal_ids[0].clone(), terminal_ids[1].clone());

        // m-own's sale, and two holds.
        let code = fx.code();
        fx.order_ref = format!("o-{}", Uuid::new_v4().simple());
        let (status, sale) = fx
            .send(
                &rdm,
                Caller::OwnTerminal,
                &fx.own,
                Req::post(
                    "/v1/redemptions",
                    json!({"code": code, "order_amount_fen": 15_000, "order_ref": fx.order_ref}),
                )
                .idempotent(),
            )
            .await;
        assert_eq!(
            (status, sale["outcome"].as_str()),
            (200, Some("approved")),
            "{sale}"
        );
        fx.redemption = sale["redemption_id"].as_str().unwrap().to_owned();
        let mut holds = Vec::new();
        for _ in 0..2 {
            let code = fx.code();
            let (status, hold) = fx
                .send(&rdm, Caller::OwnTerminal, &fx.own, Req::post("/v1/authorizations",
                    json!({"code": code, "order_amount_fen": 15_000, "order_ref": format!("o-{}", Uuid::new_v4().simple())})).idempotent())
                .await;
            assert_eq!(
                (status, hold["status"].as_str()),
                (200, Some("held")),
                "{hold}"
            );
            holds.push(hold["redemption_id"].as_str().unwrap().to_owned());
        }
        fx.holds = (holds[0].clone(), holds[1].clone());

        // Tickets: the province's and the city's programs, Jincheng's scheme, a spot and a sale.
        let mut ticket_programs = Vec::new();
        for (name, ratio) in [("山西省景区门票补贴", 10_000), ("晋城市景区门票补贴", 0)]
        {
            let p = fx
                .admin(
                    &iss,
                    &province,
                    "/v1/admin/programs",
                    json!({"name": name, "funder_place": 140000,
                    "province_ratio_bp": ratio, "pool": 1_000_000_000, "refund_policy": "forfeit"}),
                )
                .await;
            ticket_programs.push(p["id"].as_i64().unwrap());
        }
        fx.ticket_programs = (ticket_programs[0], ticket_programs[1]);
        let scheme = fx
            .admin(
                &rdm,
                &jincheng,
                "/v1/admin/ticket-schemes",
                fx.ticket_scheme_body(),
            )
            .await;
        fx.ticket_scheme = scheme["id"].as_i64().unwrap();
        let (status, created) = fx
            .stack
            .admin_post(&rdm, &jincheng, "/v1/admin/merchants", json!({
                "id": "s-own", "name": "晋城皇城相府", "credit_code": credit(140_500, "JQ001"),
                "category": "culture_tourism", "city": 140500, "settlement_account": "ICBC-6222-0002"}))
            .await;
        assert_eq!(status, 201, "{created}");
        for p in [ticket_programs[0], ticket_programs[1]] {
            fx.admin(
                &rdm,
                &jincheng,
                "/v1/admin/merchants/s-own/approvals",
                json!({"program_id": p}),
            )
            .await;
        }
        fx.own_scenic = fx.stack.pair("s-own").await;
        let (status, sale) = fx
            .send(
                &rdm,
                Caller::OwnTerminal,
                &fx.own_scenic,
                fx.ticket_sale_req(),
            )
            .await;
        assert_eq!(status, 200, "{sale}");
        fx.ticket_sale = sale["sale_id"].as_str().unwrap().to_owned();

        // Trade-in: the province's program and scheme; resident A's applications.
        let p = fx
            .admin(
                &iss,
                &province,
                "/v1/admin/programs",
                json!({"name": "汽车以旧换新", "funder_place": 140000,
                "province_ratio_bp": 5000, "pool": 5_000_000_000_i64, "refund_policy": "forfeit"}),
            )
            .await;
        fx.trade_in_program = p["id"].as_i64().unwrap();
        fx.admin(&iss, &province, "/v1/admin/trade-in/schemes", json!({"program_id": fx.trade_in_program,
            "opens_on": "2023-07-01", "closes_on": "2023-12-31", "transfer_cap_fen": 200_000, "scrap_cap_fen": 300_000}))
            .await;
        let resident = fx.resident.clone();
        fx.application = fx.apply(&resident, 1).await;
        fx.reviewed = [
            fx.apply(&resident, 2).await,
            fx.apply(&resident, 3).await,
            fx.apply(&resident, 4).await,
        ];
        let (status, view) = fx
            .stack
            .resident_get(
                &resident,
                &format!("/v1/me/trade-in/applications/{}", fx.application),
            )
            .await;
        assert_eq!(status, 200, "{view}");
        fx.document = view["certificate_sha256"]
            .as_str()
            .or(view["old_car"]["certificate_sha256"].as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("the application names its papers: {view}"));
        fx
    }

    fn ticket_scheme_body(&self) -> Value {
        json!({
            "name": format!("晋城景区首道门票补贴 {}", self.next()), "owner_place": 140500,
            "province_program_id": self.ticket_programs.0, "city_program_id": self.ticket_programs.1,
            "rule": {"max_sale_ratio_bp": 8000, "province": {"basis": "discount", "rate_bp": 5000},
                     "city_rate_bp": 2000},
            "starts_at": "2023-07-01T00:00:00+08:00", "ends_at": "2024-01-01T00:00:00+08:00"
        })
    }

    fn ticket_sale_req(&self) -> Req {
        let sale_ref = format!("t-{}", Uuid::new_v4().simple());
        Req::post(
            "/v1/ticket-sales",
            json!({"scheme_id": self.ticket_scheme, "sale_ref": sale_ref,
            "list_price_fen": 10_000, "sale_price_fen": 8_000, "quantity": 2}),
        )
        .idempotent()
    }

    /// The request of `op` for `caller`, and which terminal owns the row's things.
    async fn request(&self, op: &str, caller: Caller) -> (Req, bool) {
        let c = self.campaign;
        let (l, sp) = (self.lottery, self.spare);
        let va = &self.voucher_a;
        let n = self.next();
        let req = match op {
            "GET /healthz" | "GET /readyz" | "GET /metrics" | "GET /openapi.json" | "GET /v1/time"
            | "GET /v1/keys" | "GET /v1/campaigns" | "GET /v1/me/vouchers" | "GET /v1/me/history"
            | "GET /v1/trade-in/schemes" | "GET /v1/me/trade-in/applications"
            | "GET /v1/admin/programs" | "GET /v1/admin/campaigns" | "GET /v1/admin/trade-in/schemes"
            | "GET /v1/admin/trade-in/applications" | "GET /.well-known/voucher-keys"
            | "GET /v1/terminal/me" | "GET /v1/admin/ticket-schemes" => {
                Req::get(op.split_once(' ').unwrap().1)
            }
            "POST /v1/dev/sign-in" => Req::post("/v1/dev/sign-in",
                json!({"person_id": format!("AUTHZ-S{n}"), "home": 140500, "real_name_level": 2})),
            "GET /v1/campaigns/{id}/rounds/{round_no}/lottery" => Req::get(format!("/v1/campaigns/{l}/rounds/1/lottery")),
            "GET /v1/campaigns/{id}/rounds/{round_no}/draw" => Req::get(format!("/v1/campaigns/{l}/rounds/1/draw")),
            "POST /v1/campaigns/{id}/claims" => Req::post(format!("/v1/campaigns/{c}/claims"), json!({"claim_id": Uuid::new_v4()})),
            "GET /v1/me/vouchers/{voucher_id}/code" => Req::get(format!("/v1/me/vouchers/{va}/code")),
            "GET /v1/me/vouchers/{voucher_id}/code-key" => Req::get(format!("/v1/me/vouchers/{va}/code-key")),
            "POST /v1/me/vouchers/{voucher_id}/code-key/revoke" => Req::post_empty(format!("/v1/me/vouchers/{va}/code-key/revoke")),
            "POST /v1/campaigns/{id}/rounds/{round_no}/registrations" => Req::post_empty(format!("/v1/campaigns/{l}/rounds/2/registrations")),
            "GET /v1/campaigns/{id}/rounds/{round_no}/registrations/me" => Req::get(format!("/v1/campaigns/{l}/rounds/2/registrations/me")),
            "POST /v1/trade-in/documents" => Req {
                method: Method::POST,
                path: "/v1/trade-in/documents".into(),
                body: Body::Raw("application/pdf", pdf(&format!("upload {n}"))),
                idempotency_key: None,
            },
            "POST /v1/trade-in/applications" => {
                let token = match caller {
                    Caller::Resident => Some(&self.resident),
                    Caller::OtherResident => Some(&self.other_resident),
                    _ => None,
                };
                let body = match token {
                    Some(t) => self.application_body(t, n).await,
                    None => json!({"application_id": Uuid::new_v4()}),
                };
                Req::post("/v1/trade-in/applications", body)
            }
            "GET /v1/me/trade-in/applications/{id}" => Req::get(format!("/v1/me/trade-in/applications/{}", self.application)),
            "PUT /v1/trade-in/applications/{id}" => {
                let mut body = self.application_body(&self.resident, 1).await;
                let obj = body.as_object_mut().unwrap();
                obj.remove("application_id");
                obj.remove("program_id");
                Req::put(format!("/v1/trade-in/applications/{}", self.application), body)
            }
            "POST /v1/admin/programs" => Req::post("/v1/admin/programs", json!({"name": format!("计划 {n}"),
                "funder_place": 140000, "province_ratio_bp": 5000, "pool": 1_000_000, "refund_policy": "restore"})),
            "GET /v1/admin/programs/{id}" => Req::get(format!("/v1/admin/programs/{}", self.program)),
            "POST /v1/admin/campaigns" => Req::post("/v1/admin/campaigns", json!({
                "program_id": self.program, "name": format!("晋城券 {n}"), "owner_place": 140500,
                "category": "catering", "rule": {"type": "threshold", "min_spend": 10000, "off": 2000},
                "stock": 5, "per_person_limit": 1, "rounds": [{"round_no": 1, "starts_at": mid_2023() + Duration::days(2), "quantity": 5}],
                "validity": {"days_after_claim": 7}, "budget": 100_000,
                "eligibility": {"places": [140500], "min_real_name_level": 1}, "distribution": "claim"})),
            "GET /v1/admin/campaigns/{id}" => Req::get(format!("/v1/admin/campaigns/{c}")),
            "GET /v1/admin/campaigns/{id}/counters" => Req::get(format!("/v1/admin/campaigns/{c}/counters")),
            "POST /v1/admin/campaigns/{id}/rounds" => Req::post(format!("/v1/admin/campaigns/{sp}/rounds"),
                json!({"starts_at": mid_2023() + Duration::days(i64::from(n)), "quantity": 1})),
            "POST /v1/admin/campaigns/{id}/pause" => Req::post_empty(format!("/v1/admin/campaigns/{sp}/pause")),
            "POST /v1/admin/campaigns/{id}/resume" => Req::post_empty(format!("/v1/admin/campaigns/{sp}/resume")),
            "POST /v1/admin/campaigns/{id}/bulk-issuances" => Req {
                method: Method::POST,
                path: format!("/v1/admin/campaigns/{}/bulk-issuances", self.list_campaign),
                body: Body::Raw("text/csv", format!("person_id,name\nAUTHZ-L{n},Zhang\n").into_bytes()),
                idempotency_key: None,
            },
            "POST /v1/admin/campaigns/{id}/rounds/{round_no}/draw" => Req::post_empty(format!("/v1/admin/campaigns/{l}/rounds/1/draw")),
            "POST /v1/admin/trade-in/schemes" => {
                Req::post("/v1/admin/trade-in/schemes", json!({"program_id": self.trade_in_program,
                    "opens_on": "2024-01-01", "closes_on": "2024-06-30", "transfer_cap_fen": 200_000, "scrap_cap_fen": 300_000}))
            }
            "GET /v1/admin/trade-in/applications/{id}" => Req::get(format!("/v1/admin/trade-in/applications/{}", self.application)),
            "GET /v1/admin/trade-in/documents/{sha256}" => Req::get(format!("/v1/admin/trade-in/documents/{}", self.document)),
            "POST /v1/admin/trade-in/applications/{id}/request-more" => Req::post(
                format!("/v1/admin/trade-in/applications/{}/request-more", self.reviewed[0]),
                json!({"what": "请补充登记证书"})),
            "POST /v1/admin/trade-in/applications/{id}/reject" => Req::post(
                format!("/v1/admin/trade-in/applications/{}/reject", self.reviewed[1]),
                json!({"reason": "发票与车辆不符"})),
            "POST /v1/admin/trade-in/applications/{id}/approve" => Req::post(
                format!("/v1/admin/trade-in/applications/{}/approve", self.reviewed[2]), json!({})),
            "POST /v1/terminal-pairings" => {
                let code = self.stack.pairing_code("m-own").await;
                Req::post("/v1/terminal-pairings", json!({"pairing_code": code}))
            }
            "POST /v1/quotes" => Req::post("/v1/quotes", json!({"code": self.code_for(caller), "order_amount_fen": 15_000})),
            "POST /v1/redemptions" | "POST /v1/authorizations" => Req::post(op.split_once(' ').unwrap().1,
                json!({"code": self.code_for(caller), "order_amount_fen": 15_000, "order_ref": format!("o-{}", Uuid::new_v4().simple())}))
                .idempotent(),
            "GET /v1/redemptions" => Req::get("/v1/redemptions?date=2023-08-15"),
            "GET /v1/redemptions/{id}" => Req::get(format!("/v1/redemptions/{}", self.redemption)),
            "GET /v1/redemptions/by-order-ref/{order_ref}" => Req::get(format!("/v1/redemptions/by-order-ref/{}", self.order_ref)),
            "POST /v1/redemptions/{id}/reversals" => Req::post(format!("/v1/redemptions/{}/reversals", self.redemption),
                json!({"reversal_ref": format!("r-{n}")})),
            "POST /v1/authorizations/{id}/capture" => Req::post_empty(format!("/v1/authorizations/{}/capture", self.holds.0)),
            "POST /v1/authorizations/{id}/void" => Req::post_empty(format!("/v1/authorizations/{}/void", self.holds.1)),
            "POST /v1/ticket-sales" => self.ticket_sale_req(),
            "POST /v1/ticket-sales/{id}/refunds" => Req::post(format!("/v1/ticket-sales/{}/refunds", self.ticket_sale),
                json!({"refund_ref": format!("tr-{n}"), "quantity": 1})).idempotent(),
            "POST /v1/admin/merchants" => Req::post("/v1/admin/merchants", json!({
                "id": format!("m-new-{n}"), "name": format!("新商户 {n}"), "credit_code": credit(140_500, &format!("N{n:04}")),
                "category": "catering", "city": 140500, "settlement_account": "ICBC-6222-0003"})),
            "GET /v1/admin/merchants/{id}" => Req::get("/v1/admin/merchants/m-own"),
            "POST /v1/admin/merchants/{id}/approvals" => Req::post("/v1/admin/merchants/m-own/approvals",
                json!({"program_id": self.program})),
            "POST /v1/admin/merchants/{id}/pairings" => Req::post("/v1/admin/merchants/m-own/pairings", json!({})),
            "POST /v1/admin/merchants/{id}/terminals" => Req::post("/v1/admin/merchants/m-own/terminals", json!({})),
            "POST /v1/admin/merchants/{id}/terminals/{terminal}/rotate" => Req::post(
                format!("/v1/admin/merchants/m-own/terminals/{}/rotate", self.victims.0), json!({})),
            "POST /v1/admin/merchants/{id}/terminals/{terminal}/revoke" => Req::post(
                format!("/v1/admin/merchants/m-own/terminals/{}/revoke", self.victims.1), json!({})),
            "POST /v1/admin/programs/{id}/extra-rules" => Req::post(format!("/v1/admin/programs/{}/extra-rules", self.program),
                json!({"attribute": format!("energy_level_{n}"), "rate_bp": 500, "cap_per_order": 10_000, "budget": 1_000_000})),
            "GET /v1/admin/programs/{id}/extra-rules" => Req::get(format!("/v1/admin/programs/{}/extra-rules", self.program)),
            "POST /v1/admin/ticket-schemes" => Req::post("/v1/admin/ticket-schemes", self.ticket_scheme_body()),
            "POST /v1/terminal/unpair" => Req::post_empty("/v1/terminal/unpair"),
            other => panic!("the matrix has a row for {other} but no request for it"),
        };
        (req, op.contains("ticket-sales"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_issuance_and_redemption_endpoint_answers_every_caller_as_the_matrix_says() {
    let fx = Fx::new().await;
    let issuance_doc = ss::json(
        fx.stack
            .http
            .get(format!("{}/openapi.json", fx.stack.issuance))
            .send()
            .await
            .unwrap(),
    )
    .await
    .1;
    let redemption_doc = ss::json(
        fx.stack
            .http
            .get(format!("{}/openapi.json", fx.stack.redemption))
            .send()
            .await
            .unwrap(),
    )
    .await
    .1;
    let issuance_ops = documented(&issuance_doc);
    let redemption_ops = documented(&redemption_doc);
    let ops_issuance_rows: Vec<(&str, &str)> = STACK_ROWS
        .iter()
        .copied()
        .filter(|(op, _)| issuance_ops.contains(*op) || is_ops_route(op))
        .collect();
    let ops_redemption_rows: Vec<(&str, &str)> = STACK_ROWS
        .iter()
        .copied()
        .filter(|(op, _)| redemption_ops.contains(*op) || is_ops_route(op))
        .collect();
    assert_rows_cover(
        "issuance",
        &issuance_ops,
        &ops_issuance_rows,
        &registered_paths(&["services/issuance/src/routes"]),
    );
    assert_rows_cover(
        "redemption",
        &redemption_ops,
        &ops_redemption_rows,
        &registered_paths(&["services/redemption/src/routes"]),
    );
    let unknown: Vec<&str> = STACK_ROWS
        .iter()
        .map(|(op, _)| *op)
        .filter(|op| {
            !issuance_ops.contains(*op) && !redemption_ops.contains(*op) && !is_ops_route(op)
        })
        .collect();
    assert!(unknown.is_empty(), "rows of no service: {unknown:?}");

    let mut failures = Vec::new();
    let mut checked = 0;
    for (service, base, doc) in [
        ("issuance", &fx.stack.issuance, &issuance_doc),
        ("redemption", &fx.stack.redemption, &redemption_doc),
    ] {
        checked +=
            assert_credentials_first(&fx.stack.http, service, base, doc, &mut failures).await;
    }
    for (service, base, ops) in [
        ("issuance", fx.stack.issuance.clone(), &issuance_ops),
        ("redemption", fx.stack.redemption.clone(), &redemption_ops),
    ] {
        for (op, expected) in STACK_ROWS {
            if !ops.contains(*op) && !is_ops_route(op) {
                continue;
            }
            let fx = &fx;
            let base = base.clone();
            run_row(
                &format!("{service}: {op}"),
                expected,
                |caller| {
                    let base = base.clone();
                    async move {
                        let (req, tickets) = fx.request(op, caller).await;
                        let own = if tickets { &fx.own_scenic } else { &fx.own };
                        fx.send(&base, caller, own, req).await
                    }
                },
                &mut failures,
            )
            .await;
            checked += CALLERS.len();
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} calls broke the matrix:\n{}",
        failures.len(),
        failures.join("\n")
    );
    fx.stack.stop().await;
}

fn is_ops_route(op: &str) -> bool {
    matches!(
        op,
        "GET /healthz" | "GET /readyz" | "GET /metrics" | "GET /openapi.json"
    )
}

// ------------------------------------------------------------------ the console

/// Sends `req` to the console as `caller`: officers with a session of their own (and its
/// CSRF token on writes), residents and terminals with their own kind of credentials.
async fn console_call(
    c: &Console,
    sessions: &BTreeMap<&'static str, Session>,
    caller: Caller,
    op: &str,
    req: Req,
) -> (u16, Value) {
    let officer = match caller {
        Caller::OtherCityOfficer => Some("ty"),
        Caller::CountyOfficer => Some("yc"),
        Caller::CityOfficer => Some("jc"),
        Caller::ProvinceOfficer => Some("prov"),
        _ => None,
    };
    let mut builder = c
        .http
        .request(req.method.clone(), format!("{}{}", c.url, req.path));
    // Signing in: the credential is the body.
    let body = if op == "POST /v1/session" {
        let key = match officer {
            Some("ty") => cs::TY.to_owned(),
            Some("yc") => cs::YC.to_owned(),
            Some("jc") => cs::JC.to_owned(),
            Some(_) => cs::PROVINCE.to_owned(),
            None => format!("guess-{}", Uuid::new_v4()),
        };
        Body::Json(json!({"api_key": key}))
    } else {
        req.body
    };
    if op != "POST /v1/session" {
        if let Some(name) = officer {
            let s = &sessions[name];
            builder = builder.header("cookie", &s.cookie);
            if req.method != Method::GET {
                builder = builder.header("x-csrf-token", &s.csrf);
            }
        }
    }
    match caller {
        Caller::Resident | Caller::OtherResident => {
            builder = builder.bearer_auth("not-a-console-credential")
        }
        Caller::OwnTerminal | Caller::OtherMerchantTerminal | Caller::RevokedTerminal => {
            let headers = voucher_core::signing::sign_request(
                "k1",
                &"00".repeat(32),
                req.method.as_str(),
                &req.path,
                c.now().timestamp(),
                b"",
            )
            .unwrap();
            for (name, value) in headers {
                builder = builder.header(name, value);
            }
        }
        _ => {}
    }
    if let Body::Json(v) = body {
        builder = builder.json(&v);
    }
    ss::json(builder.send().await.unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_endpoint_answers_every_caller_as_the_matrix_says() {
    let c = Console::start_with(|s| s.dev_idp.enabled = true).await;
    // m-jc may receive advances of the program.
    sqlx::query("INSERT INTO merchant_programs (merchant_id, program_id, approved_by, approved_at) VALUES ('m-jc', $1, 'authz-matrix', now()) ON CONFLICT DO NOTHING")
        .bind(c.fx.program)
        .execute(&c.fx.db.pool)
        .await
        .unwrap();
    let mut sessions = BTreeMap::new();
    for (name, key) in [
        ("ty", cs::TY),
        ("yc", cs::YC),
        ("jc", cs::JC),
        ("prov", cs::PROVINCE),
    ] {
        sessions.insert(name, c.sign_in(key).await);
    }
    let doc = ss::json(
        c.http
            .get(format!("{}/openapi.json", c.url))
            .send()
            .await
            .unwrap(),
    )
    .await
    .1;
    let ops = documented(&doc);
    assert_rows_cover(
        "console",
        &ops,
        CONSOLE_ROWS,
        &registered_paths(&["services/reconciliation/src/serve/routes.rs"]),
    );
    let (_, officers) = ss::json(
        c.http
            .get(format!("{}/v1/session/dev", c.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let dev_name = officers
        .as_array()
        .and_then(|a| a.first())
        .or(officers["officers"].as_array().and_then(|a| a.first()))
        .and_then(|o| o["name"].as_str())
        .unwrap_or_else(|| panic!("the dev provider lists officers: {officers}"))
        .to_owned();

    let mut failures = Vec::new();
    assert_credentials_first(&c.http, "console", &c.url, &doc, &mut failures).await;
    let n = std::sync::atomic::AtomicU32::new(0);
    for (op, expected) in CONSOLE_ROWS {
        let (jc_batch, run, jc_sale) = (c.jc_batch, c.run, c.jc_sale);
        let program = c.fx.program;
        let dev_name = dev_name.clone();
        let sessions = &sessions;
        let c = &c;
        let n = &n;
        run_row(
            &format!("console: {op}"),
            expected,
            |caller| {
                let dev_name = dev_name.clone();
                async move {
                    let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let req = match *op {
                        "GET /healthz"
                        | "GET /readyz"
                        | "GET /metrics"
                        | "GET /openapi.json"
                        | "GET /v1/session"
                        | "GET /v1/session/dev"
                        | "GET /v1/overview"
                        | "GET /v1/periods"
                        | "GET /v1/review"
                        | "GET /v1/ops"
                        | "GET /v1/audit"
                        | "GET /v1/advances" => Req::get(op.split_once(' ').unwrap().1),
                        "POST /v1/session" => Req::post("/v1/session", json!({})),
                        "POST /v1/session/dev" => {
                            Req::post("/v1/session/dev", json!({"name": dev_name}))
                        }
                        "DELETE /v1/session" => Req {
                            method: Method::DELETE,
                            path: "/v1/session".into(),
                            body: Body::None,
                            idempotency_key: None,
                        },
                        "GET /v1/periods/{period}/files/{name}" => {
                            Req::get("/v1/periods/2026-05-10/files/cities.csv")
                        }
                        "GET /v1/runs/{run_id}" => Req::get(format!("/v1/runs/{run}")),
                        "GET /v1/batches/{batch_id}" => Req::get(format!("/v1/batches/{jc_batch}")),
                        "GET /v1/batches/{batch_id}/merchants" => {
                            Req::get(format!("/v1/batches/{jc_batch}/merchants"))
                        }
                        "POST /v1/batches/{batch_id}/confirm" => Req::post(
                            format!("/v1/batches/{jc_batch}/confirm"),
                            json!({"to": "city_confirmed"}),
                        ),
                        "GET /v1/redemptions/{id}" => {
                            Req::get(format!("/v1/redemptions/{jc_sale}"))
                        }
                        "POST /v1/checks" => Req::post("/v1/checks", json!({})),
                        "POST /v1/advances" => Req::post(
                            "/v1/advances",
                            json!({"program_id": program, "merchant_id": "m-jc",
                            "amount_fen": 1_000, "reference": format!("adv-{i}")}),
                        ),
                        "POST /v1/settlements" => {
                            Req::post("/v1/settlements", json!({"from": "2026-05-10"}))
                        }
                        other => panic!("the matrix has a row for {other} but no request for it"),
                    };
                    console_call(c, sessions, caller, op, req).await
                }
            },
            &mut failures,
        )
        .await;
    }
    assert!(
        failures.is_empty(),
        "{} calls broke the console's matrix:\n{}",
        failures.len(),
        failures.join("\n")
    );
    c.stop().await;
}
