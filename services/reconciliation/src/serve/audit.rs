//! The audit trail: every action taken through the console — sign-in (and refused
//! sign-ins), sign-out, confirmations (and refused ones), settlement runs, checks,
//! downloads — with who, which role and place, what, on what, how it ended and when.
//! Append-only (`console_audit`).
//!
//! The trail is written after the action, from its result; a trail that cannot be written
//! is logged as an error (the action itself is already committed and is not undone). So what
//! a client sent never makes it fail: the actor and the target are written with each control
//! character replaced by U+FFFD (PostgreSQL's text refuses NUL) and cut to [`MAX_TEXT`]
//! characters.

use super::error::ApiError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Row};
use std::sync::Arc;
use utoipa::ToSchema;
use voucher_core::{AdminRole, Clock, PlaceCode};
use voucher_platform::admin::Admin;

/// The longest actor or target written, in characters.
pub const MAX_TEXT: usize = 256;

/// `text` as the trail stores it: control characters replaced, at most [`MAX_TEXT`] characters.
fn storable(text: &str) -> String {
    text.chars()
        .take(MAX_TEXT)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// Writes and reads the trail.
#[derive(Clone)]
pub struct Audit {
    pg: PgPool,
    clock: Arc<dyn Clock>,
}

/// One entry, as `GET /v1/audit` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// Who (the officer's name; for a refused sign-in, what was claimed).
    pub actor: String,
    /// With which role (none for a refused sign-in).
    pub role: Option<String>,
    /// The actor's place.
    pub place: Option<i32>,
    /// What, e.g. `batch.confirm`.
    pub action: String,
    /// On what, e.g. `batch 12 → city_confirmed`.
    pub target: Option<String>,
    /// `ok`, or the error code that refused it.
    pub outcome: String,
    /// Further facts.
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
}

impl Audit {
    /// The trail in `pg`.
    pub fn new(pg: PgPool, clock: Arc<dyn Clock>) -> Audit {
        Audit { pg, clock }
    }

    /// Records one action by `who` (or by `claimed`, when nobody is signed in).
    pub async fn record(
        &self,
        who: Result<&Admin, &str>,
        action: &str,
        target: Option<String>,
        outcome: &str,
        detail: Option<serde_json::Value>,
    ) {
        let (actor, role, place) = match who {
            Ok(a) => (
                storable(&a.name),
                Some(a.role.as_str()),
                i32::try_from(a.place.get()).ok(),
            ),
            Err(claimed) => (storable(claimed), None, None),
        };
        let target = target.as_deref().map(storable);
        let written = sqlx::query(
            "INSERT INTO console_audit (at, actor, role, place, action, target, outcome, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(self.clock.now())
        .bind(&actor)
        .bind(role)
        .bind(place)
        .bind(action)
        .bind(target.as_deref())
        .bind(outcome)
        .bind(detail)
        .execute(&self.pg)
        .await;
        if let Err(e) = written {
            tracing::error!(action, actor, outcome, "audit entry not written: {e}");
        }
    }

    /// Records how `officer`'s `action` on `target` ended, and passes the result on.
    pub async fn outcome<T>(
        &self,
        officer: &Admin,
        action: &str,
        target: String,
        result: Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.code(),
        };
        self.record(Ok(officer), action, Some(target), outcome, None)
            .await;
        result
    }

    /// The newest `limit` entries `officer` may read: a province officer all of them, a city
    /// officer those of officers of their city and its counties.
    ///
    /// # Errors
    /// Database failure.
    pub async fn list(&self, officer: &Admin, limit: i64) -> Result<Vec<AuditEntry>, ApiError> {
        let rows = sqlx::query(
            "SELECT at, actor, role, place, action, target, outcome, detail
               FROM console_audit ORDER BY at DESC, id DESC LIMIT $1",
        )
        .bind(if officer.role == AdminRole::Province {
            limit
        } else {
            // Filtered below: read further back so that a city still gets `limit` entries.
            limit.saturating_mul(20)
        })
        .fetch_all(&self.pg)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let place: Option<i32> = r.try_get("place")?;
            let visible = place
                .and_then(|p| u32::try_from(p).ok())
                .and_then(|p| PlaceCode::try_from(p).ok())
                .is_some_and(|p| officer.can_manage(p))
                || (officer.role == AdminRole::Province && place.is_none());
            if !visible {
                continue;
            }
            out.push(AuditEntry {
                at: r.try_get("at")?,
                actor: r.try_get("actor")?,
                role: r.try_get("role")?,
                place,
                action: r.try_get("action")?,
                target: r.try_get("target")?,
                outcome: r.try_get("outcome")?,
                detail: r.try_get("detail")?,
            });
            if out.len() >= usize::try_from(limit).unwrap_or(0) {
                break;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_client_sent_is_stored_without_control_characters_and_cut() {
        assert_eq!(storable("m-jc\u{0}x\ny"), "m-jc\u{fffd}x\u{fffd}y");
        assert_eq!(storable("批次 12 → paid"), "批次 12 → paid");
        assert_eq!(storable(&"é".repeat(1000)).chars().count(), MAX_TEXT);
    }
}
