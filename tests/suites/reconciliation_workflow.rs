//! The batch workflow: draft → city_confirmed → province_confirmed → paid, each step by an
//! administrator scoped to a place, recorded with who and when. A city officer can neither
//! confirm nor read another city's batch.

use crate::reconciliation_support::*;
use reconciliation::auth::{admin_from_files, Admin};
use reconciliation::period::Period;
use reconciliation::workflow::{advance, view, Status};
use reconciliation::{report, ReconError};
use std::path::Path;

/// Writes `admin-keys.json` (hashed) and one key file per administrator; returns the admins.
fn admins(dir: &Path) -> (Admin, Admin, Admin) {
    let entries = [
        ("shanxi-finance", "prov-key", "province", 140_000),
        ("jincheng-finance", "jc-key", "city", 140_500),
        ("taiyuan-finance", "ty-key", "city", 140_100),
    ];
    let json: Vec<serde_json::Value> = entries
        .iter()
        .map(|(name, key, role, place)| {
            std::fs::write(dir.join(format!("{name}.key")), format!("{key}\n")).unwrap();
            let digest = ring_sha256(key);
            serde_json::json!({"name": name, "key_sha256": digest, "role": role, "place": place})
        })
        .collect();
    std::fs::write(
        dir.join("admin-keys.json"),
        serde_json::to_string(&json).unwrap(),
    )
    .unwrap();
    let load = |name: &str| admin_from_files(dir, &dir.join(format!("{name}.key"))).unwrap();
    (
        load("shanxi-finance"),
        load("jincheng-finance"),
        load("taiyuan-finance"),
    )
}

fn ring_sha256(key: &str) -> String {
    voucher_platform::admin::sha256_hex(key)
}

async fn batch_of(fx: &Fx, city: i32) -> i64 {
    sqlx::query_scalar("SELECT id FROM settlement_batches WHERE city = $1")
        .bind(city)
        .fetch_one(&fx.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_city_officer_cannot_confirm_or_read_another_citys_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (province, jincheng, taiyuan) = admins(dir.path());
    let fx = Fx::new(1_000_000, 5000, None, &[]).await;
    let (ty, jc) = (fx.campaign(TAIYUAN).await, fx.campaign(JINCHENG).await);
    fx.merchant("m-ty", "太原家具城", TAIYUAN).await;
    fx.merchant("m-jc", "晋城家居馆", JINCHENG).await;
    fx.sale(ty, "m-ty", "p1", 2_000, at(10, 10, 0)).await;
    fx.sale(jc, "m-jc", "p2", 3_000, at(10, 11, 0)).await;
    fx.settle(10, 10).await;
    let (ty_batch, jc_batch) = (batch_of(&fx, TAIYUAN).await, batch_of(&fx, JINCHENG).await);
    let pool = &fx.db.pool;

    // Jincheng's officer may not touch or see Taiyuan's batch.
    let err = advance(
        pool,
        ty_batch,
        Status::CityConfirmed,
        &jincheng,
        at(11, 9, 0),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ReconError::ForbiddenPlace { .. }), "{err}");
    let err = view(pool, ty_batch, &jincheng).await.unwrap_err();
    assert!(matches!(err, ReconError::ForbiddenPlace { .. }), "{err}");
    // Its scoped report shows only Jincheng.
    let r = report::load(pool, &Period::day(day(10)), Some(&jincheng))
        .await
        .unwrap();
    let cities: Vec<u32> = r
        .programs
        .iter()
        .flat_map(|p| p.cities.iter().map(|c| c.city))
        .collect();
    assert_eq!(cities, vec![140_500]);
    assert!(r.programs[0].merchants.iter().all(|m| m.city == 140_500));

    // The province cannot confirm for the city; the city cannot skip to the province's step.
    let err = advance(
        pool,
        jc_batch,
        Status::CityConfirmed,
        &province,
        at(11, 9, 0),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ReconError::ForbiddenRole { .. }), "{err}");
    let err = advance(
        pool,
        jc_batch,
        Status::ProvinceConfirmed,
        &jincheng,
        at(11, 9, 0),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ReconError::ForbiddenRole { .. }), "{err}");
    let err = advance(pool, jc_batch, Status::Paid, &province, at(11, 9, 0))
        .await
        .unwrap_err();
    assert!(matches!(err, ReconError::InvalidTransition { .. }), "{err}");

    // The proper path, each step recorded.
    advance(
        pool,
        jc_batch,
        Status::CityConfirmed,
        &jincheng,
        at(11, 9, 0),
    )
    .await
    .unwrap();
    let err = advance(
        pool,
        jc_batch,
        Status::CityConfirmed,
        &jincheng,
        at(11, 9, 1),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, ReconError::InvalidTransition { .. }),
        "confirmed once: {err}"
    );
    advance(
        pool,
        jc_batch,
        Status::ProvinceConfirmed,
        &province,
        at(11, 10, 0),
    )
    .await
    .unwrap();
    advance(pool, jc_batch, Status::Paid, &province, at(11, 15, 0))
        .await
        .unwrap();
    let v = view(pool, jc_batch, &jincheng).await.unwrap();
    assert_eq!(v.status, "paid");
    let steps: Vec<(String, String)> = v
        .steps
        .iter()
        .map(|s| (s.status.clone(), s.actor.clone()))
        .collect();
    assert_eq!(
        steps,
        vec![
            ("draft".into(), "test".into()),
            ("city_confirmed".into(), "jincheng-finance".into()),
            ("province_confirmed".into(), "shanxi-finance".into()),
            ("paid".into(), "shanxi-finance".into()),
        ]
    );
    assert_eq!(v.steps[1].at, "2026-05-11T01:00:00Z", "when, recorded");
    // Taiyuan's officer confirms its own; its batch is untouched by the others' steps.
    advance(
        pool,
        ty_batch,
        Status::CityConfirmed,
        &taiyuan,
        at(11, 9, 30),
    )
    .await
    .unwrap();
    assert_eq!(
        view(pool, ty_batch, &province).await.unwrap().status,
        "city_confirmed"
    );

    // The CLI: an unknown key is refused; Jincheng's key cannot read Taiyuan's batch.
    let out = std::process::Command::new(reconciliation_binary())
        .args(["show", "--batch", &ty_batch.to_string(), "--api-key-file"])
        .arg(dir.path().join("jincheng-finance.key"))
        .arg("--secrets-dir")
        .arg(dir.path())
        .env("APP__POSTGRES__URL", &fx.db.url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("may not act on or read"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
