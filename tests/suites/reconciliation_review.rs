//! The review list: suspicious patterns ranked with their evidence.

use crate::reconciliation_support::*;
use reconciliation::period::Period;
use reconciliation::review::{review, ReviewOptions};

#[tokio::test]
async fn suspicious_patterns_are_ranked_with_evidence() {
    let fx = Fx::new(1_000_000, 5000, None, &[]).await;
    let jc = fx.campaign(JINCHENG).await;
    for m in ["m-ok", "m-same", "m-edge", "m-burst", "m-rev"] {
        fx.merchant(m, &format!("商户 {m}"), JINCHENG).await;
    }
    // An ordinary merchant: different people, ordinary orders, spread over the day.
    for i in 0..6 {
        fx.redemption(
            jc,
            "m-ok",
            &format!("ok{i}"),
            25_000 + i,
            2_000,
            "approved",
            at(12, 8 + i as u32, 0),
            None,
        )
        .await;
    }
    // One person, five vouchers at one merchant.
    for i in 0..5 {
        fx.redemption(
            jc,
            "m-same",
            "p-same",
            30_000,
            2_000,
            "approved",
            at(12, 10, i),
            None,
        )
        .await;
    }
    // Orders just over the 100-yuan threshold (≤ 5% over), clustered.
    for i in 0..6 {
        fx.redemption(
            jc,
            "m-edge",
            &format!("e{i}"),
            10_000 + i * 7,
            2_000,
            "approved",
            at(12, 11 + i as u32, 0),
            None,
        )
        .await;
    }
    // A burst: 25 in one hour.
    for i in 0..25 {
        fx.redemption(
            jc,
            "m-burst",
            &format!("b{i}"),
            40_000,
            2_000,
            "approved",
            at(12, 15, i),
            None,
        )
        .await;
    }
    // Redemptions reversed minutes later.
    for i in 0..3 {
        let r = fx
            .redemption(
                jc,
                "m-rev",
                &format!("r{i}"),
                40_000,
                2_000,
                "approved",
                at(12, 16, i),
                None,
            )
            .await;
        fx.reverse(r, 2_000, at(12, 16, 10 + i)).await;
    }

    let findings = review(
        &fx.db.pool,
        &Period::day(day(12)),
        &ReviewOptions::default(),
    )
    .await
    .unwrap();

    let got: Vec<(&str, &str)> = findings
        .iter()
        .map(|f| (f.pattern, f.merchant_id.as_str()))
        .collect();
    assert!(
        got.contains(&("same_person_same_merchant", "m-same")),
        "{got:?}"
    );
    assert!(got.contains(&("just_over_threshold", "m-edge")), "{got:?}");
    assert!(got.contains(&("burst", "m-burst")), "{got:?}");
    assert!(got.contains(&("quick_reversal", "m-rev")), "{got:?}");
    assert!(
        got.iter().all(|(_, m)| *m != "m-ok"),
        "the ordinary merchant is not listed: {got:?}"
    );
    assert!(
        findings.windows(2).all(|w| w[0].score >= w[1].score),
        "ranked"
    );
    let same = findings
        .iter()
        .find(|f| f.pattern == "same_person_same_merchant")
        .unwrap();
    assert_eq!(same.person_id.as_deref(), Some("p-same"));
    assert!(
        same.evidence.starts_with("5 redemptions"),
        "{}",
        same.evidence
    );
    assert_eq!(same.sample.len(), 5);
}
