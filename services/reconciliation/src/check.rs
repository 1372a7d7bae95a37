//! The cross-check: Redis hot state against PostgreSQL, per campaign, plus consistency
//! checks inside PostgreSQL that the hot state does not cover. Prints every difference; the
//! binary exits non-zero when there is any.
//!
//! Compared per campaign (PostgreSQL's view from [`crate::rebuild::pg_state`]):
//! - config: `status`, per-person `limit`;
//! - stock `total`, `claimed`, `recycled`, and `live + pool` = stock − claimed + recycled;
//! - every person's count (`:p:<b>`) and every claim record (`:v:<b>`, all buckets);
//! - the outbox: events in `:ob` are not yet persisted (PostgreSQL lags); more than
//!   `max_outbox_lag` is a difference, and pending (delivered, unacknowledged) entries are
//!   reported;
//! - campaigns Redis knows that PostgreSQL does not.
//!
//! Inside PostgreSQL: each campaign's budget (Σ bucket remaining + Σ granted − Σ reversed =
//! budget) and each 立减 entitlement's `used_fen` against its redemptions and restoring
//! reversals.

use crate::error::ReconError;
use crate::rebuild::pg_state;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Row};
use std::collections::BTreeSet;
use voucher_core::CampaignStatus;
use voucher_store::HotStore;

/// How many differing persons or claims are listed one by one per campaign.
const LIST_LIMIT: usize = 20;

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    /// The campaign (none for global items).
    pub campaign_id: Option<i64>,
    /// What differs, e.g. `claimed` or `person p-001`.
    pub item: String,
    /// The value in Redis.
    pub redis: String,
    /// The value in PostgreSQL.
    pub postgres: String,
}

/// The result of a cross-check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    /// Campaigns compared.
    pub campaigns: usize,
    /// Events in outbox streams (not yet persisted), all campaigns.
    pub outbox_len: u64,
    /// Of those, delivered to the persister and not acknowledged.
    pub outbox_pending: u64,
    /// Every difference found.
    pub differences: Vec<Difference>,
}

impl CheckReport {
    /// Whether Redis and PostgreSQL agree.
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty()
    }

    /// A human rendering, one line per difference.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "check: {} campaigns, outbox {} events ({} pending), {} differences",
            self.campaigns,
            self.outbox_len,
            self.outbox_pending,
            self.differences.len()
        );
        for d in &self.differences {
            let campaign = d.campaign_id.map_or("-".to_owned(), |c| c.to_string());
            let _ = writeln!(
                s,
                "DIFF campaign {campaign}: {}: redis={} postgres={}",
                d.item, d.redis, d.postgres
            );
        }
        s
    }
}

/// A check as recorded (`check_results`): whoever ran it — the cron's command line or an
/// officer in the console — and what it found. The console shows the last one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRecord {
    /// The record.
    pub id: i64,
    /// When it ran.
    pub at: DateTime<Utc>,
    /// Who ran it.
    pub actor: String,
    /// Whether Redis and PostgreSQL agreed.
    pub clean: bool,
    /// What it found.
    pub report: CheckReport,
}

/// Records `report`, run by `actor` at `at`; returns the record's id.
///
/// # Errors
/// Database failure.
pub async fn record(
    pool: &PgPool,
    actor: &str,
    report: &CheckReport,
    at: DateTime<Utc>,
) -> Result<i64, ReconError> {
    let json = serde_json::to_value(report).map_err(|e| ReconError::Encode(e.to_string()))?;
    Ok(sqlx::query_scalar(
        "INSERT INTO check_results (at, actor, clean, report) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(at)
    .bind(actor)
    .bind(report.is_clean())
    .bind(json)
    .fetch_one(pool)
    .await?)
}

/// The last recorded check, if any.
///
/// # Errors
/// Database failure; a stored report that does not parse.
pub async fn latest(pool: &PgPool) -> Result<Option<CheckRecord>, ReconError> {
    let Some(r) = sqlx::query(
        "SELECT id, at, actor, clean, report FROM check_results ORDER BY at DESC, id DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let report: serde_json::Value = r.try_get("report")?;
    Ok(Some(CheckRecord {
        id: r.try_get("id")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        clean: r.try_get("clean")?,
        report: serde_json::from_value(report)
            .map_err(|e| ReconError::Corrupt(format!("check_results: {e}")))?,
    }))
}

/// Options of the check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// Events waiting in a campaign's outbox that are still tolerated (default 0).
    pub max_outbox_lag: u64,
}

fn show<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "(missing)".to_owned(), |v| v.to_string())
}

/// Runs the cross-check.
///
/// # Errors
/// Database or Redis failure (a difference is not an error).
#[tracing::instrument(name = "reconciliation.check", skip_all, err(level = "debug"))]
pub async fn check(
    pool: &PgPool,
    hot: &HotStore,
    opts: CheckOptions,
) -> Result<CheckReport, ReconError> {
    let mut report = CheckReport::default();
    let campaigns = voucher_store::pg::campaigns::list(pool, None).await?;
    let known: BTreeSet<i64> = campaigns.iter().map(|c| c.id.0).collect();
    for id in hot.campaign_ids().await? {
        if !known.contains(&id.0) {
            report.differences.push(Difference {
                campaign_id: Some(id.0),
                item: "campaign".into(),
                redis: "present".into(),
                postgres: "(missing)".into(),
            });
        }
    }
    for campaign in &campaigns {
        report.campaigns += 1;
        let id = campaign.id.0;
        let mut diff = |item: String, redis: String, postgres: String| {
            report.differences.push(Difference {
                campaign_id: Some(id),
                item,
                redis,
                postgres,
            });
        };
        let pg = pg_state(pool, campaign).await?;
        let Some(snap) = hot.campaign_snapshot(campaign.id).await? else {
            diff("campaign".into(), "(missing)".into(), "present".into());
            continue;
        };
        let status = match campaign.status {
            CampaignStatus::Active => "active",
            CampaignStatus::Paused => "paused",
        };
        if snap.fields.get("status").map(String::as_str) != Some(status) {
            diff(
                "status".into(),
                show(snap.fields.get("status")),
                status.into(),
            );
        }
        let limit = i64::from(campaign.spec.per_person_limit);
        if snap.counter("limit") != Some(limit) {
            diff(
                "limit".into(),
                show(snap.counter("limit")),
                limit.to_string(),
            );
        }
        for (item, redis, postgres) in [
            ("total", snap.counter("total"), pg.stock),
            ("claimed", snap.counter("claimed"), pg.claimed),
            ("recycled", snap.counter("recycled"), pg.recycled),
        ] {
            if redis != Some(postgres) {
                diff(item.into(), show(redis), postgres.to_string());
            }
        }
        let unclaimed = match (snap.counter("live"), snap.counter("pool")) {
            (Some(l), Some(p)) => Some(l + p),
            _ => None,
        };
        if unclaimed != Some(pg.available()) {
            diff(
                "live+pool".into(),
                show(unclaimed),
                pg.available().to_string(),
            );
        }
        let persons: BTreeSet<&String> = snap.persons.keys().chain(pg.persons.keys()).collect();
        let mut listed = 0usize;
        let mut unlisted = 0usize;
        for p in persons {
            let (r, g) = (snap.persons.get(p), pg.persons.get(p));
            if r != g {
                if listed < LIST_LIMIT {
                    diff(format!("person {p} vouchers"), show(r), show(g));
                    listed += 1;
                } else {
                    unlisted += 1;
                }
            }
        }
        let claims: BTreeSet<&String> = snap.claims.keys().chain(pg.claims.keys()).collect();
        listed = 0;
        for c in claims {
            let (r, g) = (snap.claims.get(c), pg.claims.get(c));
            if r != g {
                if listed < LIST_LIMIT {
                    diff(format!("claim {c}"), show(r), show(g));
                    listed += 1;
                } else {
                    unlisted += 1;
                }
            }
        }
        if unlisted > 0 {
            diff(
                "more person or claim differences".into(),
                format!("{unlisted} not listed"),
                "-".into(),
            );
        }
        report.outbox_len += snap.outbox_len;
        report.outbox_pending += snap.outbox_pending;
        if snap.outbox_len > opts.max_outbox_lag {
            diff(
                "outbox events not yet persisted".into(),
                format!("{} ({} pending)", snap.outbox_len, snap.outbox_pending),
                format!("≤ {} tolerated", opts.max_outbox_lag),
            );
        }
    }
    report.differences.extend(budget_differences(pool).await?);
    report
        .differences
        .extend(entitlement_differences(pool).await?);
    Ok(report)
}

async fn budget_differences(pool: &PgPool) -> Result<Vec<Difference>, ReconError> {
    let rows = sqlx::query(
        "WITH b AS (SELECT campaign_id, sum(remaining_fen)::bigint AS remaining
                      FROM campaign_budget_buckets GROUP BY campaign_id),
              g AS (SELECT campaign_id,
                           COALESCE(sum(discount_fen) FILTER (WHERE status IN ('approved', 'held', 'captured')), 0)::bigint AS granted,
                           COALESCE(sum(reversed_fen), 0)::bigint AS reversed
                      FROM redemptions GROUP BY campaign_id)
         SELECT c.id, c.budget_fen, b.remaining, COALESCE(g.granted, 0) AS granted, COALESCE(g.reversed, 0) AS reversed
           FROM campaigns c JOIN b ON b.campaign_id = c.id LEFT JOIN g ON g.campaign_id = c.id
          WHERE b.remaining + COALESCE(g.granted, 0) - COALESCE(g.reversed, 0) <> c.budget_fen
          ORDER BY c.id",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let remaining: i64 = r.try_get("remaining")?;
            let granted: i64 = r.try_get("granted")?;
            let reversed: i64 = r.try_get("reversed")?;
            Ok(Difference {
                campaign_id: Some(r.try_get("id")?),
                item: "budget: remaining + granted − reversed".into(),
                redis: "-".into(),
                postgres: format!(
                    "{} ≠ budget {}",
                    remaining + granted - reversed,
                    r.try_get::<i64, _>("budget_fen")?
                ),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(ReconError::from)
}

async fn entitlement_differences(pool: &PgPool) -> Result<Vec<Difference>, ReconError> {
    let rows = sqlx::query(
        "WITH g AS (SELECT campaign_id, person_id, sum(discount_fen)::bigint AS granted
                      FROM redemptions WHERE NOT single_use AND status IN ('approved', 'held', 'captured')
                     GROUP BY campaign_id, person_id),
              v AS (SELECT r.campaign_id, r.person_id, sum(v.discount_reversed_fen)::bigint AS restored
                      FROM reversals v JOIN redemptions r ON r.id = v.redemption_id
                     WHERE NOT r.single_use AND v.restored GROUP BY r.campaign_id, r.person_id)
         SELECT e.campaign_id, e.person_id, e.used_fen,
                COALESCE(g.granted, 0) - COALESCE(v.restored, 0) AS expected
           FROM entitlements e
           LEFT JOIN g ON g.campaign_id = e.campaign_id AND g.person_id = e.person_id
           LEFT JOIN v ON v.campaign_id = e.campaign_id AND v.person_id = e.person_id
          WHERE e.used_fen <> COALESCE(g.granted, 0) - COALESCE(v.restored, 0)
          ORDER BY e.campaign_id, e.person_id",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Difference {
                campaign_id: Some(r.try_get("campaign_id")?),
                item: format!(
                    "entitlement of {} used_fen",
                    r.try_get::<String, _>("person_id")?
                ),
                redis: "-".into(),
                postgres: format!(
                    "{} ≠ redemptions {}",
                    r.try_get::<i64, _>("used_fen")?,
                    r.try_get::<i64, _>("expected")?
                ),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(ReconError::from)
}
