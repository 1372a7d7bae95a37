//! Review (疑似套现排查): redemptions a finance officer should look at, ranked, with the
//! evidence — not a verdict. Four patterns, each computed in SQL over a period:
//!
//! | pattern | what | score |
//! |---|---|---|
//! | `same_person_same_merchant` | one person redeeming many vouchers at one merchant | 10 × count |
//! | `just_over_threshold` | 满减 orders just over the threshold (within a margin), clustered at a merchant | share % + count |
//! | `burst` | an hour far above the merchant's normal hourly rate (28 days before plus the period) | peak ÷ normal × 10 |
//! | `quick_reversal` | reversals soon after their redemption at one merchant | 8 × count |
//!
//! Thresholds are options ([`ReviewOptions`]) with defaults a finance office can tune.

use crate::error::ReconError;
use crate::period::Period;
use serde::Serialize;
use sqlx::{PgPool, Row};
use std::fmt::Write as _;

/// The tuning of the review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReviewOptions {
    /// A person with at least this many redemptions at one merchant is listed.
    pub same_person_min: i64,
    /// "Just over" = at most this many basis points over the threshold.
    pub threshold_margin_bp: i64,
    /// At least this many just-over orders, and at least half of the merchant's orders.
    pub threshold_min: i64,
    /// A burst is an hour with ≥ this factor × the normal hourly rate …
    pub burst_factor: i64,
    /// … and at least this many redemptions.
    pub burst_min: i64,
    /// A reversal within this many minutes of its redemption is quick …
    pub reversal_minutes: i32,
    /// … and a merchant with at least this many is listed.
    pub reversal_min: i64,
    /// How many findings to keep.
    pub limit: usize,
}

impl Default for ReviewOptions {
    fn default() -> Self {
        ReviewOptions {
            same_person_min: 3,
            threshold_margin_bp: 500,
            threshold_min: 5,
            burst_factor: 5,
            burst_min: 20,
            reversal_minutes: 60,
            reversal_min: 2,
            limit: 100,
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Higher = look first.
    pub score: i64,
    /// The pattern.
    pub pattern: &'static str,
    /// The merchant.
    pub merchant_id: String,
    /// The person, when the pattern is about one.
    pub person_id: Option<String>,
    /// The figures behind it.
    pub evidence: String,
    /// Some redemption ids to open.
    pub sample: Vec<String>,
}

/// The counted redemptions of the period (sales by creation, captured holds by capture),
/// for the table alias `t`.
fn counted(t: &str) -> String {
    format!(
        "{t}.status IN ('approved', 'captured')
         AND CASE WHEN {t}.status = 'captured' THEN {t}.resolved_at ELSE {t}.created_at END >= $1
         AND CASE WHEN {t}.status = 'captured' THEN {t}.resolved_at ELSE {t}.created_at END < $2"
    )
}

/// Runs every pattern over `period`, ranked by score (then pattern, merchant, person).
///
/// # Errors
/// Database failure.
#[tracing::instrument(name = "reconciliation.review", skip_all, err(level = "debug"))]
pub async fn review(
    pool: &PgPool,
    period: &Period,
    o: &ReviewOptions,
) -> Result<Vec<Finding>, ReconError> {
    let (from, to) = (period.starts_at(), period.ends_at());
    let mut out = Vec::new();

    let rows = sqlx::query(&format!(
        "SELECT merchant_id, person_id, count(*) AS n, sum(discount_fen)::bigint AS d,
                (array_agg(id::text ORDER BY created_at, id))[1:5] AS sample
           FROM redemptions r WHERE {}
          GROUP BY merchant_id, person_id HAVING count(*) >= $3",
        counted("r")
    ))
    .bind(from)
    .bind(to)
    .bind(o.same_person_min)
    .fetch_all(pool)
    .await?;
    for r in &rows {
        let n: i64 = r.try_get("n")?;
        out.push(Finding {
            score: 10 * n,
            pattern: "same_person_same_merchant",
            merchant_id: r.try_get("merchant_id")?,
            person_id: Some(r.try_get("person_id")?),
            evidence: format!(
                "{n} redemptions, {} fen of discounts",
                r.try_get::<i64, _>("d")?
            ),
            sample: r.try_get("sample")?,
        });
    }

    let rows = sqlx::query(&format!(
        "WITH t AS (SELECT r.id, r.merchant_id, r.created_at, r.order_amount_fen,
                           (c.rule->>'min_spend')::bigint AS threshold
                      FROM redemptions r JOIN campaigns c ON c.id = r.campaign_id
                     WHERE c.rule->>'type' = 'threshold' AND {})
         SELECT merchant_id, count(*) AS n,
                count(*) FILTER (WHERE near) AS n_near,
                (array_agg(id::text ORDER BY created_at, id) FILTER (WHERE near))[1:5] AS sample
           FROM (SELECT *, threshold > 0 AND order_amount_fen >= threshold
                           AND order_amount_fen * 10000 <= threshold * (10000 + $3) AS near FROM t) x
          GROUP BY merchant_id
         HAVING count(*) FILTER (WHERE near) >= $4 AND 2 * count(*) FILTER (WHERE near) >= count(*)",
        counted("r")
    ))
    .bind(from)
    .bind(to)
    .bind(o.threshold_margin_bp)
    .bind(o.threshold_min)
    .fetch_all(pool)
    .await?;
    for r in &rows {
        let (n, near): (i64, i64) = (r.try_get("n")?, r.try_get("n_near")?);
        out.push(Finding {
            score: near * 100 / n.max(1) + near,
            pattern: "just_over_threshold",
            merchant_id: r.try_get("merchant_id")?,
            person_id: None,
            evidence: format!(
                "{near} of {n} threshold orders within {} bp above the threshold",
                o.threshold_margin_bp
            ),
            sample: r
                .try_get::<Option<Vec<String>>, _>("sample")?
                .unwrap_or_default(),
        });
    }

    let rows = sqlx::query(
        "WITH h AS (SELECT merchant_id, date_trunc('hour', created_at) AS hr, count(*) AS n
                      FROM redemptions
                     WHERE status IN ('approved', 'captured')
                       AND created_at >= $1 - interval '28 days' AND created_at < $2
                     GROUP BY 1, 2),
              s AS (SELECT merchant_id, (sum(n) + 28 * 24 - 1)::bigint / (28 * 24) AS normal FROM h GROUP BY 1),
              peak AS (SELECT DISTINCT ON (merchant_id) merchant_id, hr, n FROM h
                        WHERE hr >= date_trunc('hour', $1::timestamptz) ORDER BY merchant_id, n DESC, hr)
         SELECT p.merchant_id, p.hr, p.n, greatest(s.normal, 1) AS normal,
                ARRAY(SELECT r.id::text FROM redemptions r
                       WHERE r.merchant_id = p.merchant_id AND r.status IN ('approved', 'captured')
                         AND r.created_at >= p.hr AND r.created_at < p.hr + interval '1 hour'
                       ORDER BY r.created_at, r.id LIMIT 5) AS sample
           FROM peak p JOIN s USING (merchant_id)
          WHERE p.n >= $3 AND p.n >= $4 * greatest(s.normal, 1)",
    )
    .bind(from)
    .bind(to)
    .bind(o.burst_min)
    .bind(o.burst_factor)
    .fetch_all(pool)
    .await?;
    for r in &rows {
        let (n, normal): (i64, i64) = (r.try_get("n")?, r.try_get("normal")?);
        let hr: chrono::DateTime<chrono::Utc> = r.try_get("hr")?;
        out.push(Finding {
            score: n * 10 / normal.max(1),
            pattern: "burst",
            merchant_id: r.try_get("merchant_id")?,
            person_id: None,
            evidence: format!(
                "{n} redemptions in the hour from {} (normal ≈ {normal} per hour)",
                hr.with_timezone(&crate::period::beijing())
                    .format("%Y-%m-%d %H:%M %:z")
            ),
            sample: r.try_get("sample")?,
        });
    }

    let rows = sqlx::query(
        "SELECT r.merchant_id, count(*) AS n, sum(v.discount_reversed_fen)::bigint AS d,
                (array_agg(r.id::text ORDER BY v.created_at, r.id))[1:5] AS sample
           FROM reversals v JOIN redemptions r ON r.id = v.redemption_id
          WHERE v.created_at >= $1 AND v.created_at < $2
            AND v.created_at - r.created_at <= make_interval(mins => $3)
          GROUP BY r.merchant_id HAVING count(*) >= $4",
    )
    .bind(from)
    .bind(to)
    .bind(o.reversal_minutes)
    .bind(o.reversal_min)
    .fetch_all(pool)
    .await?;
    for r in &rows {
        let n: i64 = r.try_get("n")?;
        out.push(Finding {
            score: 8 * n,
            pattern: "quick_reversal",
            merchant_id: r.try_get("merchant_id")?,
            person_id: None,
            evidence: format!(
                "{n} reversals within {} min of the redemption, {} fen of discounts",
                o.reversal_minutes,
                r.try_get::<i64, _>("d")?
            ),
            sample: r.try_get("sample")?,
        });
    }

    out.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then(a.pattern.cmp(b.pattern))
            .then(a.merchant_id.cmp(&b.merchant_id))
            .then(a.person_id.cmp(&b.person_id))
    });
    out.truncate(o.limit);
    Ok(out)
}

/// A human rendering of the ranked list.
pub fn render(period: &Period, findings: &[Finding]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Review {period}: {} findings (ranked; evidence, not a verdict)",
        findings.len()
    );
    for (i, f) in findings.iter().enumerate() {
        let who = f
            .person_id
            .as_ref()
            .map_or(String::new(), |p| format!(" person {p}"));
        let _ = writeln!(
            s,
            "{:>3}. [{}] {} merchant {}{}: {}",
            i + 1,
            f.score,
            f.pattern,
            f.merchant_id,
            who,
            f.evidence
        );
        if !f.sample.is_empty() {
            let _ = writeln!(s, "     e.g. {}", f.sample.join(", "));
        }
    }
    s
}
