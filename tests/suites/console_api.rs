//! The finance console's API: the place-scope matrix (province, city A, city B and a county
//! officer against every endpoint), the confirm workflow by the command line's rules,
//! settlement runs for the province only and idempotent, CSRF on every write, sessions that
//! expire and end, the audit trail, the report files byte for byte the command line's, and
//! bad input refused with a code and nothing written.

use crate::console_support::*;
use crate::reconciliation_support::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;

fn cities_of(list: &Value, key: &str) -> BTreeSet<i64> {
    list.as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|c| c[key].as_i64().unwrap())
        .collect()
}

fn set(v: &[i32]) -> BTreeSet<i64> {
    v.iter().map(|c| i64::from(*c)).collect()
}

async fn everyone(c: &Console) -> [Session; 4] {
    [
        c.sign_in(PROVINCE).await,
        c.sign_in(JC).await,
        c.sign_in(TY).await,
        c.sign_in(YC).await,
    ]
}

#[tokio::test]
async fn reads_are_scoped_to_the_officers_place() {
    let c = Console::start().await;
    let [prov, jc, ty, yc] = everyone(&c).await;

    // The session says who.
    for (s, name, place) in [
        (&prov, "shanxi-finance", 140_000),
        (&jc, "jincheng-finance", JINCHENG),
        (&ty, "taiyuan-finance", TAIYUAN),
        (&yc, "yangcheng-finance", YANGCHENG),
    ] {
        let (status, body) = c.get("/v1/session", s).await;
        assert_eq!(status, 200);
        assert_eq!(body["officer"]["name"], name);
        assert_eq!(body["officer"]["place"], place);
    }

    // Overview: cities against allocations, and whose budget.
    let (status, o) = c.get("/v1/overview", &prov).await;
    assert_eq!(status, 200, "{o}");
    assert_eq!(cities_of(&o["cities"], "city"), set(&[TAIYUAN, JINCHENG]));
    assert_eq!(o["programs"][0]["budget_kind"], "pool");
    assert_eq!(o["programs"][0]["budget_fen"], 10_000_000);
    let (_, o) = c.get("/v1/overview", &jc).await;
    assert_eq!(cities_of(&o["cities"], "city"), set(&[JINCHENG]));
    assert_eq!(o["programs"][0]["budget_kind"], "allocation");
    assert_eq!(o["programs"][0]["budget_fen"], 80_000);
    let (_, o) = c.get("/v1/overview", &ty).await;
    assert_eq!(cities_of(&o["cities"], "city"), set(&[TAIYUAN]));
    assert_eq!(o["programs"][0]["budget_fen"], 50_000);
    let (_, o) = c.get("/v1/overview", &yc).await;
    assert_eq!(cities_of(&o["cities"], "city"), BTreeSet::new());
    let county_spending: i64 = o["spending_by_day"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["spending_fen"].as_i64().unwrap())
        .sum();
    assert_eq!(
        county_spending, 3_000,
        "the county sees its own campaign only"
    );

    // Periods: the runs' sums cover the batches the officer sees.
    let spending = |v: &Value| -> Vec<i64> {
        v["periods"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| p["runs"].as_array().unwrap().clone())
            .map(|r| r["spending_fen"].as_i64().unwrap())
            .collect()
    };
    let (_, p) = c.get("/v1/periods", &prov).await;
    assert_eq!(spending(&p), vec![6_000 + 9_000 - 1_000 + 3_000]);
    assert_eq!(p["periods"][0]["runs"][0]["batches"]["draft"], 2);
    let (_, p) = c.get("/v1/periods", &jc).await;
    assert_eq!(spending(&p), vec![9_000 - 1_000 + 3_000]);
    let (_, p) = c.get("/v1/periods", &ty).await;
    assert_eq!(spending(&p), vec![6_000]);
    let (_, p) = c.get("/v1/periods", &yc).await;
    assert_eq!(spending(&p), Vec::<i64>::new(), "a batch is the city's");

    // A run: its batches per city.
    let run = format!("/v1/runs/{}", c.run);
    let (_, r) = c.get(&run, &prov).await;
    assert_eq!(cities_of(&r["batches"], "city"), set(&[TAIYUAN, JINCHENG]));
    let jc_line = r["batches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["city"] == JINCHENG)
        .unwrap()
        .clone();
    assert_eq!(jc_line["spending_fen"], 11_000);
    assert_eq!(jc_line["province_fen"], 5_500);
    assert_eq!(jc_line["allocation_remaining_fen"], 80_000 - 5_500);
    assert_eq!(jc_line["counties"][0]["county"], YANGCHENG);
    let (_, r) = c.get(&run, &jc).await;
    assert_eq!(cities_of(&r["batches"], "city"), set(&[JINCHENG]));
    let (_, r) = c.get(&run, &ty).await;
    assert_eq!(cities_of(&r["batches"], "city"), set(&[TAIYUAN]));
    let (status, r) = c.get(&run, &yc).await;
    assert_eq!((status, r["code"].as_str()), (403, Some("FORBIDDEN_PLACE")));

    // A batch and its merchant lines: only its city's officers and the province.
    for path in [
        format!("/v1/batches/{}", c.jc_batch),
        format!("/v1/batches/{}/merchants", c.jc_batch),
    ] {
        for (s, expected) in [(&prov, 200), (&jc, 200), (&ty, 403), (&yc, 403)] {
            let (status, body) = c.get(&path, s).await;
            assert_eq!(
                status, expected,
                "{path} as {}: {body}",
                s.body["officer"]["name"]
            );
            if status == 403 {
                assert_eq!(body["code"], "FORBIDDEN_PLACE");
            }
        }
    }
    let (_, b) = c.get(&format!("/v1/batches/{}", c.jc_batch), &jc).await;
    assert_eq!(b["status"], "draft");
    assert_eq!(
        b["next"],
        json!({"to": "city_confirmed", "role": "city", "allowed": true})
    );
    assert_eq!(b["steps"][0]["status"], "draft");
    let (_, b) = c.get(&format!("/v1/batches/{}", c.jc_batch), &prov).await;
    assert_eq!(b["next"]["allowed"], false, "the city confirms first");
    let (_, m) = c
        .get(&format!("/v1/batches/{}/merchants", c.jc_batch), &jc)
        .await;
    let ids: Vec<&str> = m["merchants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["merchant_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["m-jc", "m-yc"]);
    assert_eq!(m["payable_fen"], 11_000);

    // Report files: the cities each officer covers.
    let path = "/v1/periods/2026-05-10/files/cities.csv";
    for (s, cities) in [
        (&prov, vec!["晋城", "太原"]),
        (&jc, vec!["晋城"]),
        (&ty, vec!["太原"]),
        (&yc, vec![]),
    ] {
        let (status, bytes) = c.download(path, s).await;
        assert_eq!(status, 200);
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(text.lines().count(), 1 + cities.len(), "{text}");
        for city in ["晋城", "太原"] {
            assert_eq!(
                text.contains(city),
                cities.contains(&city),
                "{city} in {text}"
            );
        }
    }

    // Review: findings at the merchants the officer covers.
    let merchants = |v: &Value| -> BTreeSet<String> {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["merchant_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let path = "/v1/review?period=2026-05-10";
    let (_, r) = c.get(path, &prov).await;
    assert_eq!(
        merchants(&r),
        ["m-jc", "m-ty", "m-yc"].map(String::from).into()
    );
    let (_, r) = c.get(path, &jc).await;
    assert_eq!(merchants(&r), ["m-jc", "m-yc"].map(String::from).into());
    let (_, r) = c.get(path, &ty).await;
    assert_eq!(merchants(&r), ["m-ty"].map(String::from).into());
    let (_, r) = c.get(path, &yc).await;
    assert_eq!(merchants(&r), ["m-yc"].map(String::from).into());
    assert!(!r["findings"][0]["sample"].as_array().unwrap().is_empty());

    // Redemptions: by the merchant's place.
    for (id, visible) in [
        (c.ty_sale, [true, false, true, false]),
        (c.jc_sale, [true, true, false, false]),
        (c.yc_sale, [true, true, false, true]),
    ] {
        for (s, see) in [&prov, &jc, &ty, &yc].into_iter().zip(visible) {
            let (status, body) = c.get(&format!("/v1/redemptions/{id}"), s).await;
            assert_eq!(status, if see { 200 } else { 403 }, "{id}: {body}");
        }
    }
    let (_, r) = c.get(&format!("/v1/redemptions/{}", c.jc_sale), &jc).await;
    assert_eq!(r["reversals"][0]["discount_reversed_fen"], 1_000);

    // The audit trail: a city sees its own officers (and its counties'), the province all.
    let actors = |v: &Value| -> BTreeSet<String> {
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["actor"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, a) = c.get("/v1/audit", &prov).await;
    assert_eq!(actors(&a).len(), 4, "{a}");
    let (_, a) = c.get("/v1/audit", &jc).await;
    assert_eq!(
        actors(&a),
        ["jincheng-finance", "yangcheng-finance"]
            .map(String::from)
            .into()
    );
    let (_, a) = c.get("/v1/audit", &ty).await;
    assert_eq!(actors(&a), ["taiyuan-finance"].map(String::from).into());

    // Nobody signed in: nothing.
    for path in ["/v1/overview", "/v1/periods", &run, "/v1/ops", "/v1/audit"] {
        let resp = c.call(Method::GET, path, None, None, None).await;
        assert_eq!(resp.status(), 401, "{path}");
    }
}

#[tokio::test]
async fn the_confirm_workflow_follows_the_command_lines_rules() {
    let c = Console::start().await;
    let [prov, jc, ty, yc] = everyone(&c).await;
    let confirm = format!("/v1/batches/{}/confirm", c.jc_batch);
    let step = |to: &str| Some(json!({ "to": to }));

    for (s, code) in [
        (&ty, "FORBIDDEN_PLACE"),
        (&yc, "FORBIDDEN_PLACE"),
        (&prov, "FORBIDDEN_ROLE"),
    ] {
        let (status, body) = c
            .write(Method::POST, &confirm, s, step("city_confirmed"))
            .await;
        assert_eq!((status, body["code"].as_str()), (403, Some(code)), "{body}");
    }
    let (status, body) = c.write(Method::POST, &confirm, &jc, step("paid")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("FORBIDDEN_ROLE"))
    );
    let (status, body) = c
        .write(Method::POST, &confirm, &prov, step("province_confirmed"))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("INVALID_TRANSITION")),
        "{body}"
    );

    let (status, body) = c
        .write(Method::POST, &confirm, &jc, step("city_confirmed"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "city_confirmed");
    assert_eq!(body["next"]["to"], "province_confirmed");
    assert_eq!(body["next"]["allowed"], false);
    let (status, body) = c
        .write(Method::POST, &confirm, &prov, step("province_confirmed"))
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("province_confirmed"))
    );
    let (status, body) = c.write(Method::POST, &confirm, &prov, step("paid")).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("paid")));
    assert_eq!(body["next"], Value::Null);
    let steps: Vec<(&str, &str)> = body["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["status"].as_str().unwrap(), s["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [
            ("draft", "test"),
            ("city_confirmed", "jincheng-finance"),
            ("province_confirmed", "shanxi-finance"),
            ("paid", "shanxi-finance")
        ]
    );
    let (status, body) = c.write(Method::POST, &confirm, &prov, step("paid")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("INVALID_TRANSITION"))
    );
    // Taiyuan's batch did not move.
    let (_, t) = c.get(&format!("/v1/batches/{}", c.ty_batch), &ty).await;
    assert_eq!(t["status"], "draft");

    // Each attempt is in the audit trail, refusals with their code.
    let outcomes: Vec<(String, String)> = sqlx::query_as(
        "SELECT actor, outcome FROM console_audit WHERE action = 'batch.confirm' ORDER BY id",
    )
    .fetch_all(&c.fx.db.pool)
    .await
    .unwrap();
    let outcomes: Vec<(&str, &str)> = outcomes
        .iter()
        .map(|(a, o)| (a.as_str(), o.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("taiyuan-finance", "FORBIDDEN_PLACE"),
            ("yangcheng-finance", "FORBIDDEN_PLACE"),
            ("shanxi-finance", "FORBIDDEN_ROLE"),
            ("jincheng-finance", "FORBIDDEN_ROLE"),
            ("shanxi-finance", "INVALID_TRANSITION"),
            ("jincheng-finance", "ok"),
            ("shanxi-finance", "ok"),
            ("shanxi-finance", "ok"),
            ("shanxi-finance", "INVALID_TRANSITION"),
        ]
    );
}

#[tokio::test]
async fn officers_confirming_at_once_move_the_batch_once() {
    let c = Console::start().await;
    let sessions: Vec<Session> = futures::future::join_all((0..8).map(|_| c.sign_in(JC))).await;
    let confirm = format!("/v1/batches/{}/confirm", c.jc_batch);
    let answers = futures::future::join_all(sessions.iter().cycle().take(32).map(|s| {
        c.write(
            Method::POST,
            &confirm,
            s,
            Some(json!({"to": "city_confirmed"})),
        )
    }))
    .await;
    let ok = answers.iter().filter(|(s, _)| *s == 200).count();
    let conflicts = answers
        .iter()
        .filter(|(s, b)| *s == 409 && b["code"] == "INVALID_TRANSITION")
        .count();
    assert_eq!((ok, conflicts), (1, 31), "{answers:?}");
    let steps = c
        .fx
        .scalar(&format!(
            "SELECT count(*) FROM settlement_batch_steps WHERE batch_id = {} AND status = 'city_confirmed'",
            c.jc_batch
        ))
        .await;
    assert_eq!(steps, 1);
}

#[tokio::test]
async fn only_the_province_runs_a_settlement_and_running_it_twice_writes_nothing() {
    let c = Console::start().await;
    // The morning after the 11th.
    c.clock.set(at(12, 9, 0));
    let [prov, jc, _, yc] = everyone(&c).await;
    let (status, b) = c
        .write(
            Method::POST,
            "/v1/settlements",
            &prov,
            Some(json!({"from": "2026-05-12"})),
        )
        .await;
    assert_eq!(
        (status, b["details"]["field"].as_str()),
        (400, Some("to")),
        "today is not over: {b}"
    );
    let body = Some(json!({"from": "2026-05-11"}));
    for s in [&jc, &yc] {
        let (status, b) = c
            .write(Method::POST, "/v1/settlements", s, body.clone())
            .await;
        assert_eq!((status, b["code"].as_str()), (403, Some("FORBIDDEN_ROLE")));
    }
    assert_eq!(c.fx.scalar("SELECT count(*) FROM settlement_runs").await, 1);
    let (status, first) = c
        .write(Method::POST, "/v1/settlements", &prov, body.clone())
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["period"], "2026-05-11");
    assert_eq!(first["created"].as_array().unwrap().len(), 1);
    let rows = c.fx.ledger_rows().await;
    let (status, again) = c.write(Method::POST, "/v1/settlements", &prov, body).await;
    assert_eq!(status, 200);
    assert_eq!(again["created"], json!([]));
    assert_eq!(again["existing"], first["created"]);
    assert_eq!(
        c.fx.ledger_rows().await,
        rows,
        "the second run wrote nothing"
    );
    c.fx.assert_balanced().await;
    // The new run shows in the list, with the unsettled sale of the 11th now settled.
    let (_, p) = c.get("/v1/periods", &prov).await;
    assert_eq!(p["periods"][0]["period"], "2026-05-11");
    assert_eq!(p["periods"][0]["runs"][0]["spending_fen"], 4_000);
    let (status, b) = c
        .write(
            Method::POST,
            "/v1/settlements",
            &prov,
            Some(json!({"from": "2026-05-09", "to": "2026-05-10"})),
        )
        .await;
    assert_eq!(
        (status, b["code"].as_str()),
        (409, Some("PERIOD_OVERLAP")),
        "{b}"
    );
}

#[tokio::test]
async fn every_write_needs_the_sessions_csrf_token() {
    let c = Console::start().await;
    let prov = c.sign_in(PROVINCE).await;
    let jc = c.sign_in(JC).await;
    let other = c.sign_in(JC).await;
    let writes: Vec<(Method, String, &Session, Option<Value>)> = vec![
        (
            Method::POST,
            format!("/v1/batches/{}/confirm", c.jc_batch),
            &jc,
            Some(json!({"to": "city_confirmed"})),
        ),
        (
            Method::POST,
            "/v1/settlements".into(),
            &prov,
            Some(json!({"from": "2026-05-11"})),
        ),
        (Method::POST, "/v1/checks".into(), &prov, Some(json!({}))),
        (Method::DELETE, "/v1/session".into(), &jc, None),
    ];
    for (method, path, session, body) in &writes {
        for token in [None, Some("not-the-token"), Some(other.csrf.as_str())] {
            let resp = c
                .call(method.clone(), path, Some(session), token, body.clone())
                .await;
            let status = resp.status().as_u16();
            let b: Value = resp.json().await.unwrap();
            assert_eq!(
                (status, b["code"].as_str()),
                (403, Some("CSRF_TOKEN_INVALID")),
                "{method} {path} with {token:?}"
            );
        }
    }
    // Nothing happened.
    assert_eq!(c.fx.scalar("SELECT count(*) FROM settlement_runs").await, 1);
    assert_eq!(c.fx.scalar("SELECT count(*) FROM check_results").await, 0);
    let (_, b) = c.get(&format!("/v1/batches/{}", c.jc_batch), &jc).await;
    assert_eq!(b["status"], "draft");
    let (status, _) = c.get("/v1/session", &jc).await;
    assert_eq!(status, 200, "the session was not signed out");
    // With the token, the same writes work.
    let (status, body) = c
        .write(
            Method::POST,
            &format!("/v1/batches/{}/confirm", c.jc_batch),
            &jc,
            Some(json!({"to": "city_confirmed"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = c
        .write(Method::POST, "/v1/checks", &prov, Some(json!({})))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["actor"], "shanxi-finance");
    let (_, ops) = c.get("/v1/ops", &jc).await;
    assert_eq!(ops["last_check"]["id"], body["id"]);
    assert_eq!(ops["outbox"]["available"], true);
    let (status, body) = c
        .write(Method::POST, "/v1/checks", &jc, Some(json!({})))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("FORBIDDEN_ROLE"))
    );
}

#[tokio::test]
async fn sessions_end_when_idle_at_their_maximum_age_and_at_sign_out() {
    let c = Console::start_with(|s| {
        s.session.idle_secs = 600;
        s.session.max_secs = 1800;
    })
    .await;
    let s = c.sign_in(JC).await;
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(s.set_cookie.contains(attr), "{attr} in {}", s.set_cookie);
    }
    // Idle: each use within 10 minutes keeps it; 10 minutes without one ends it.
    c.advance_secs(590);
    assert_eq!(c.get("/v1/session", &s).await.0, 200);
    c.advance_secs(590);
    assert_eq!(c.get("/v1/periods", &s).await.0, 200);
    c.advance_secs(601);
    let (status, body) = c.get("/v1/periods", &s).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("SESSION_EXPIRED"))
    );

    // Maximum age: used every 5 minutes, it still ends 30 minutes after sign-in.
    let s = c.sign_in(JC).await;
    let mut used = 0;
    loop {
        c.advance_secs(300);
        used += 300;
        let (status, body) = c.get("/v1/session", &s).await;
        if used < 1800 {
            assert_eq!(status, 200, "after {used} s: {body}");
        } else {
            assert_eq!(
                (status, body["code"].as_str()),
                (401, Some("SESSION_EXPIRED"))
            );
            break;
        }
    }

    // Sign-out ends it at once and clears the cookie.
    let s = c.sign_in(JC).await;
    let resp = c
        .call(Method::DELETE, "/v1/session", Some(&s), Some(&s.csrf), None)
        .await;
    assert_eq!(resp.status(), 204);
    let cleared = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cleared.starts_with("vp_console=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    let (status, body) = c.get("/v1/session", &s).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("SESSION_EXPIRED"))
    );

    // A cookie the service never issued.
    let forged = Session {
        cookie: "vp_console=made-up".into(),
        ..s.clone()
    };
    let (status, body) = c.get("/v1/session", &forged).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("SESSION_REQUIRED"))
    );
}

#[tokio::test]
async fn sign_in_refuses_a_wrong_key_and_the_dev_provider_exists_only_when_on() {
    let c = Console::start().await;
    let resp = c
        .call(
            Method::POST,
            "/v1/session",
            None,
            None,
            Some(json!({"api_key": "nope"})),
        )
        .await;
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("set-cookie").is_none());
    let b: Value = resp.json().await.unwrap();
    assert_eq!(b["code"], "API_KEY_INVALID");
    let refused = c
        .fx
        .scalar("SELECT count(*) FROM console_audit WHERE action = 'session.sign_in' AND outcome = 'API_KEY_INVALID'")
        .await;
    assert_eq!(refused, 1);
    for body in [
        json!({}),
        json!({"api_key": 5}),
        json!({"api_key": "x", "extra": 1}),
    ] {
        let resp = c
            .call(Method::POST, "/v1/session", None, None, Some(body.clone()))
            .await;
        assert_eq!(resp.status(), 400, "{body}");
    }
    let resp = c
        .call(Method::GET, "/v1/session/dev", None, None, None)
        .await;
    assert_eq!(resp.status(), 404, "the dev provider is off by default");

    let d = Console::start_with(|s| s.dev_idp.enabled = true).await;
    let (status, list) = crate::stack_support::json(
        d.call(Method::GET, "/v1/session/dev", None, None, None)
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list["officers"].as_array().unwrap().len(), 4);
    let s = session_of(
        d.call(
            Method::POST,
            "/v1/session/dev",
            None,
            None,
            Some(json!({"name": "taiyuan-finance"})),
        )
        .await,
    )
    .await;
    assert_eq!(s.body["method"], "dev_idp");
    assert_eq!(s.body["officer"]["place"], TAIYUAN);
    let (status, r) = d.get(&format!("/v1/runs/{}", d.run), &s).await;
    assert_eq!(status, 200);
    assert_eq!(
        cities_of(&r["batches"], "city"),
        set(&[TAIYUAN]),
        "the same scope as a key"
    );
    let resp = d
        .call(
            Method::POST,
            "/v1/session/dev",
            None,
            None,
            Some(json!({"name": "mallory"})),
        )
        .await;
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn the_report_files_are_the_command_lines_bytes() {
    let c = Console::start().await;
    for (name, key) in [("shanxi-finance", PROVINCE), ("jincheng-finance", JC)] {
        let s = c.sign_in(key).await;
        let out = tempfile::tempdir().unwrap();
        let status = std::process::Command::new(reconciliation_binary())
            .args(["report", "--from", "2026-05-10", "--out"])
            .arg(out.path())
            .arg("--api-key-file")
            .arg(key_file(c.dir.path(), name))
            .arg("--secrets-dir")
            .arg(c.dir.path())
            .env("APP__POSTGRES__URL", &c.fx.db.url)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        for file in reconciliation::report::FILES {
            let cli = std::fs::read(out.path().join(file)).unwrap();
            let resp = c
                .call(
                    Method::GET,
                    &format!("/v1/periods/2026-05-10/files/{file}"),
                    Some(&s),
                    None,
                    None,
                )
                .await;
            assert_eq!(resp.status(), 200);
            let disposition = resp.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .to_owned();
            let stem = file.split('.').next().unwrap();
            assert!(
                disposition.contains(&format!("{stem}-2026-05-10.")),
                "{disposition}"
            );
            let api = resp.bytes().await.unwrap().to_vec();
            assert_eq!(api, cli, "{file} as {name}");
        }
    }
    let s = c.sign_in(PROVINCE).await;
    let downloads = c
        .fx
        .scalar("SELECT count(*) FROM console_audit WHERE action = 'report.download' AND outcome = 'ok'")
        .await;
    assert_eq!(
        downloads,
        2 * i64::try_from(reconciliation::report::FILES.len()).unwrap(),
        "two officers, every file"
    );
    let (status, b) = c.get("/v1/periods/2026-05-10/files/passwd", &s).await;
    assert_eq!((status, b["code"].as_str()), (404, Some("FILE_NOT_FOUND")));
}

#[tokio::test]
async fn bad_input_gets_a_code_and_writes_nothing() {
    let c = Console::start().await;
    let prov = c.sign_in(PROVINCE).await;
    let jc = c.sign_in(JC).await;
    for path in [
        "/v1/overview?days=0",
        "/v1/overview?days=abc",
        "/v1/overview?weeks=2",
        "/v1/review?period=2026-13-01",
        "/v1/review?period=2026-05-10..2026-05-01",
        "/v1/periods/yesterday/files/cities.csv",
        "/v1/runs/abc",
        "/v1/redemptions/not-a-uuid",
        "/v1/audit?limit=0",
    ] {
        let (status, body) = c.get(path, &prov).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(
            body["code"].is_string() && body["message"].is_string(),
            "{body}"
        );
    }
    for (path, code) in [
        ("/v1/runs/999999", "RUN_NOT_FOUND"),
        ("/v1/batches/999999", "BATCH_NOT_FOUND"),
        (
            "/v1/redemptions/00000000-0000-0000-0000-000000000000",
            "REDEMPTION_NOT_FOUND",
        ),
    ] {
        let (status, body) = c.get(path, &prov).await;
        assert_eq!((status, body["code"].as_str()), (404, Some(code)));
    }
    let confirm = format!("/v1/batches/{}/confirm", c.jc_batch);
    for body in [
        json!({"to": "approved"}),
        json!({}),
        json!({"to": "city_confirmed", "x": 1}),
    ] {
        let (status, b) = c
            .write(Method::POST, &confirm, &jc, Some(body.clone()))
            .await;
        assert_eq!(status, 400, "{body}: {b}");
    }
    for body in [
        json!({"from": "2026-05-12", "to": "2026-05-11"}),
        json!({"from": "May 11"}),
    ] {
        let (status, b) = c
            .write(Method::POST, "/v1/settlements", &prov, Some(body.clone()))
            .await;
        assert_eq!(status, 400, "{body}: {b}");
    }
    assert_eq!(c.fx.scalar("SELECT count(*) FROM settlement_runs").await, 1);
    let (_, b) = c.get(&format!("/v1/batches/{}", c.jc_batch), &jc).await;
    assert_eq!(b["status"], "draft");
}

/// Found by the API fuzzing (`deploy/local/api-fuzz.sh`, console runs): `/v1/session` and
/// `/v1/session/dev` were `web::resource`s, whose own 405 had an empty body.
#[tokio::test]
async fn a_method_a_session_path_lacks_is_405_with_the_envelope_and_allow() {
    let c = Console::start_with(|s| s.dev_idp.enabled = true).await;
    let prov = c.sign_in(PROVINCE).await;
    for (method, path, allow) in [
        (Method::PATCH, "/v1/session", "GET, POST, DELETE"),
        (Method::PUT, "/v1/session", "GET, POST, DELETE"),
        (Method::DELETE, "/v1/session/dev", "GET, POST"),
        (Method::PUT, "/v1/runs/1", "GET"),
    ] {
        let resp = c
            .call(method.clone(), path, Some(&prov), Some(&prov.csrf), None)
            .await;
        let status = resp.status().as_u16();
        let sent_allow = resp
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_owned());
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 405, "{method} {path}: {body}");
        assert_eq!(
            body["code"], "METHOD_NOT_ALLOWED",
            "{method} {path}: {body}"
        );
        assert_eq!(sent_allow.as_deref(), Some(allow), "{method} {path}");
    }
    // The session was not touched by any of them.
    let (status, _) = c.get("/v1/session", &prov).await;
    assert_eq!(status, 200);
}

/// Found by the API fuzzing: a NUL in an advance's merchant id or reference reached
/// PostgreSQL (whose text refuses it), and the refused advance's audit entry was not written
/// (logged at ERROR). Now the body is refused with `INVALID_FIELD` naming the field, before
/// anything else, for every officer.
#[tokio::test]
async fn an_advance_with_a_control_character_is_invalid_field_and_writes_nothing() {
    let c = Console::start().await;
    let prov = c.sign_in(PROVINCE).await;
    let jc = c.sign_in(JC).await;
    let program = c.fx.program;
    for (who, body, field) in [
        (
            &prov,
            json!({"program_id": program, "merchant_id": "m-jc\u{0}", "amount_fen": 100, "reference": "r-1"}),
            "merchant_id",
        ),
        (
            &prov,
            json!({"program_id": program, "merchant_id": "m-jc", "amount_fen": 100, "reference": "r\u{0}1"}),
            "reference",
        ),
        (
            &prov,
            json!({"program_id": program, "merchant_id": "m-jc", "amount_fen": 100, "reference": "r".repeat(65)}),
            "reference",
        ),
        (
            &jc,
            json!({"program_id": program, "merchant_id": "m-jc", "amount_fen": 100, "reference": "r\u{0}1"}),
            "reference",
        ),
    ] {
        let (status, b) = c
            .write(Method::POST, "/v1/advances", who, Some(body.clone()))
            .await;
        assert_eq!(status, 400, "{body}: {b}");
        assert_eq!(b["code"], "INVALID_FIELD", "{b}");
        assert_eq!(b["details"]["field"], field, "{b}");
    }
    assert_eq!(
        c.fx.scalar("SELECT count(*) FROM merchant_advances").await,
        0
    );
}

/// The audit trail stores what a client sent with its control characters replaced: a
/// download of a file name holding a NUL is refused, and its entry is still written.
#[tokio::test]
async fn an_audit_entry_is_written_whatever_the_client_sent() {
    let c = Console::start().await;
    let prov = c.sign_in(PROVINCE).await;
    let (status, b) = c
        .get("/v1/periods/2026-05-10/files/cities%00.csv", &prov)
        .await;
    assert_eq!(status, 404, "{b}");
    let (status, b) = c.get("/v1/audit?limit=5", &prov).await;
    assert_eq!(status, 200, "{b}");
    let entry = &b["entries"][0];
    assert_eq!(entry["action"], "report.download", "{b}");
    assert_eq!(entry["outcome"], "FILE_NOT_FOUND", "{b}");
    assert_eq!(entry["target"], "2026-05-10/cities\u{fffd}.csv", "{b}");
}

/// Found by the API fuzzing's long run: `POST /v1/checks` reads every campaign from both
/// stores, and over a record of thousands of campaigns it outlived the request deadline
/// (503 `DEADLINE_EXCEEDED`). It has its own deadline (`check.request_timeout_secs`): here
/// PostgreSQL holds the check longer than the ordinary deadline, and it still answers.
#[tokio::test]
async fn the_cross_check_has_its_own_deadline_longer_than_a_reads() {
    let c = Console::start_with(|s| s.server.request_timeout_ms = 500).await;
    let prov = c.sign_in(PROVINCE).await;
    let mut tx = c.fx.db.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE campaigns IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        tx.commit().await.unwrap();
    });
    let (status, b) = c.write(Method::POST, "/v1/checks", &prov, None).await;
    release.await.unwrap();
    assert_eq!(status, 200, "{b}");
    let (status, ops) = c.get("/v1/ops", &prov).await;
    assert_eq!(status, 200, "{ops}");
    assert_eq!(ops["last_check"]["id"], b["id"], "{ops}");
}
