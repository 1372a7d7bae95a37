//! People's sessions: a signed-in [`Officer`] behind an opaque cookie.
//!
//! - The cookie `vp_console` holds 32 random bytes (base64url); PostgreSQL stores only their
//!   SHA-256, so a leaked table does not sign anyone in. The cookie is `HttpOnly` (no script
//!   reads it), `Secure` (browsers send it only over HTTPS, and to `localhost`/`127.0.0.1`),
//!   `SameSite=Strict` (no other site's page makes the browser send it).
//! - **CSRF:** every write (`POST`, `PUT`, `PATCH`, `DELETE`) must carry the session's own
//!   random token in `X-CSRF-Token` (a synchronizer token, handed out by sign-in and
//!   `GET /v1/session`, never in a cookie), compared in constant time. `SameSite=Strict`
//!   alone would leave older browsers and same-site subdomains open.
//! - A session ends `session.idle_secs` after its last request, `session.max_secs` after
//!   sign-in, or at sign-out. `last_seen_at` is written at most every
//!   [`TOUCH_EVERY_SECS`], not on every request.
//!
//! Handlers take an [`Officer`] and never learn how the person signed in (see
//! [`super::signin`]).

use super::error::{ApiError, Code};
use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::{web, FromRequest, HttpRequest};
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use futures::future::LocalBoxFuture;
use ring::rand::SecureRandom as _;
use serde::Serialize;
use sqlx::{PgPool, Row};
use std::sync::Arc;
use utoipa::ToSchema;
use voucher_core::{AdminRole, Clock, PlaceCode};
use voucher_platform::admin::Admin;

/// The session cookie's name.
pub const COOKIE: &str = "vp_console";
/// The header a write carries the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// `last_seen_at` is refreshed at most this often.
pub const TOUCH_EVERY_SECS: i64 = 30;

/// The session store.
#[derive(Clone)]
pub struct Sessions {
    pg: PgPool,
    clock: Arc<dyn Clock>,
    idle: Duration,
    max: Duration,
}

/// A live session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who.
    pub officer: Admin,
    /// The token writes must send in `X-CSRF-Token`.
    pub csrf_token: String,
    /// How they signed in (`api_key`, `dev_idp`, `oidc`).
    pub method: String,
    /// When it ends unless used again (the idle limit, capped by the maximum age).
    pub expires_at: DateTime<Utc>,
    token_sha256: String,
}

/// The officer a session belongs to, as handlers see them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OfficerView {
    /// The name in the audit trail.
    pub name: String,
    /// `province` or `city`.
    pub role: String,
    /// Their place (a province, a city, or a county).
    pub place: u32,
    /// The place's name.
    pub place_name: String,
}

impl From<&Admin> for OfficerView {
    fn from(a: &Admin) -> OfficerView {
        OfficerView {
            name: a.name.clone(),
            role: a.role.as_str().to_owned(),
            place: a.place.get(),
            place_name: crate::places::name(a.place),
        }
    }
}

/// `GET /v1/session`, and the answer to a sign-in.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionView {
    /// Who is signed in.
    pub officer: OfficerView,
    /// Send it in `X-CSRF-Token` with every write.
    pub csrf_token: String,
    /// When the session ends unless used again.
    pub expires_at: DateTime<Utc>,
    /// How they signed in.
    pub method: String,
}

impl From<&Session> for SessionView {
    fn from(s: &Session) -> SessionView {
        SessionView {
            officer: OfficerView::from(&s.officer),
            csrf_token: s.csrf_token.clone(),
            expires_at: s.expires_at,
            method: s.method.clone(),
        }
    }
}

fn random_token() -> Result<String, ApiError> {
    let mut raw = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| ApiError::internal(anyhow::anyhow!("the system random source failed")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
}

fn sha256_hex(text: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()))
}

/// Equal, in time independent of where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Sessions {
    /// A store over `pg`; sessions last `idle_secs` idle and `max_secs` at most.
    pub fn new(pg: PgPool, clock: Arc<dyn Clock>, idle_secs: i64, max_secs: i64) -> Sessions {
        Sessions {
            pg,
            clock,
            idle: Duration::seconds(idle_secs),
            max: Duration::seconds(max_secs),
        }
    }

    /// Now, by the service's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Starts a session for `officer`; returns the cookie's token and the session.
    ///
    /// # Errors
    /// The database or the random source failed.
    pub async fn start(
        &self,
        officer: &Admin,
        method: &str,
    ) -> Result<(String, Session), ApiError> {
        let token = random_token()?;
        let csrf_token = random_token()?;
        let now = self.clock.now();
        let token_sha256 = sha256_hex(&token);
        sqlx::query(
            "INSERT INTO console_sessions (token_sha256, csrf_token, officer, role, place, method,
                                           created_at, last_seen_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)",
        )
        .bind(&token_sha256)
        .bind(&csrf_token)
        .bind(&officer.name)
        .bind(officer.role.as_str())
        .bind(i32::try_from(officer.place.get()).unwrap_or(0))
        .bind(method)
        .bind(now)
        .bind(now + self.max)
        .execute(&self.pg)
        .await?;
        let session = Session {
            officer: officer.clone(),
            csrf_token,
            method: method.to_owned(),
            expires_at: (now + self.idle).min(now + self.max),
            token_sha256,
        };
        Ok((token, session))
    }

    /// The live session of `token`, its last use refreshed.
    ///
    /// # Errors
    /// `SESSION_REQUIRED` (unknown token), `SESSION_EXPIRED` (ended), database failure.
    pub async fn find(&self, token: &str) -> Result<Session, ApiError> {
        let token_sha256 = sha256_hex(token);
        let row = sqlx::query(
            "SELECT csrf_token, officer, role, place, method, last_seen_at, expires_at, ended_at
               FROM console_sessions WHERE token_sha256 = $1",
        )
        .bind(&token_sha256)
        .fetch_optional(&self.pg)
        .await?
        .ok_or_else(|| ApiError::new(Code::SessionRequired))?;
        let now = self.clock.now();
        let last_seen: DateTime<Utc> = row.try_get("last_seen_at")?;
        let hard_end: DateTime<Utc> = row.try_get("expires_at")?;
        let ended: Option<DateTime<Utc>> = row.try_get("ended_at")?;
        if ended.is_some() || now >= hard_end || now >= last_seen + self.idle {
            return Err(ApiError::new(Code::SessionExpired));
        }
        let role = match row.try_get::<String, _>("role")?.as_str() {
            "province" => AdminRole::Province,
            _ => AdminRole::City,
        };
        let place: i32 = row.try_get("place")?;
        let place = u32::try_from(place)
            .ok()
            .and_then(|p| PlaceCode::try_from(p).ok())
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("session place {place}")))?;
        if now - last_seen >= Duration::seconds(TOUCH_EVERY_SECS) {
            sqlx::query("UPDATE console_sessions SET last_seen_at = $2 WHERE token_sha256 = $1")
                .bind(&token_sha256)
                .bind(now)
                .execute(&self.pg)
                .await?;
        }
        let seen = if now - last_seen >= Duration::seconds(TOUCH_EVERY_SECS) {
            now
        } else {
            last_seen
        };
        Ok(Session {
            officer: Admin {
                name: row.try_get("officer")?,
                role,
                place,
            },
            csrf_token: row.try_get("csrf_token")?,
            method: row.try_get("method")?,
            expires_at: (seen + self.idle).min(hard_end),
            token_sha256,
        })
    }

    /// Ends `session` (sign-out).
    ///
    /// # Errors
    /// Database failure.
    pub async fn end(&self, session: &Session) -> Result<(), ApiError> {
        sqlx::query(
            "UPDATE console_sessions SET ended_at = $2 WHERE token_sha256 = $1 AND ended_at IS NULL",
        )
        .bind(&session.token_sha256)
        .bind(self.clock.now())
        .execute(&self.pg)
        .await?;
        Ok(())
    }

    /// Deletes sessions that ended more than a day ago; returns how many.
    ///
    /// # Errors
    /// Database failure.
    pub async fn purge(&self) -> Result<u64, ApiError> {
        let cutoff = self.clock.now() - Duration::days(1);
        let done = sqlx::query(
            "DELETE FROM console_sessions
              WHERE expires_at < $1 OR ended_at < $1 OR last_seen_at < $2",
        )
        .bind(cutoff)
        .bind(cutoff - self.idle)
        .execute(&self.pg)
        .await?;
        Ok(done.rows_affected())
    }

    /// The cookie that carries `token`.
    pub fn cookie(&self, token: String) -> Cookie<'static> {
        Cookie::build(COOKIE, token)
            .http_only(true)
            .secure(true)
            .same_site(SameSite::Strict)
            .path("/")
            .max_age(CookieDuration::seconds(self.max.num_seconds()))
            .finish()
    }

    /// A cookie that makes the browser forget the session.
    pub fn removal_cookie() -> Cookie<'static> {
        let mut c = Cookie::build(COOKIE, "")
            .http_only(true)
            .secure(true)
            .same_site(SameSite::Strict)
            .path("/")
            .finish();
        c.make_removal();
        c
    }
}

/// A request from a signed-in officer (the extractor checks the session and, on a write,
/// the CSRF token).
#[derive(Debug, Clone)]
pub struct Officer {
    /// Who, with which role and place.
    pub admin: Admin,
    /// Their session.
    pub session: Session,
}

fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl FromRequest for Officer {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Officer, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let sessions = req.app_data::<web::Data<Sessions>>().cloned();
        let token = req.cookie(COOKIE).map(|c| c.value().to_owned());
        let write = is_write(req.method());
        let csrf = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Box::pin(async move {
            let sessions = sessions.ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!("Sessions are not registered"))
            })?;
            let token = token
                .filter(|t| !t.is_empty())
                .ok_or_else(|| ApiError::new(Code::SessionRequired))?;
            let session = sessions.find(&token).await?;
            if write {
                let sent = csrf.unwrap_or_default();
                if !same(sent.trim().as_bytes(), session.csrf_token.as_bytes()) {
                    return Err(ApiError::new(Code::CsrfTokenInvalid));
                }
            }
            Ok(Officer {
                admin: session.officer.clone(),
                session,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_compared_whole() {
        let a = random_token().unwrap_or_else(|e| panic!("{e}"));
        let b = random_token().unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(same(a.as_bytes(), a.as_bytes()));
        assert!(!same(a.as_bytes(), b.as_bytes()));
        assert!(!same(a.as_bytes(), &a.as_bytes()[..42]));
        assert!(!same(b"", a.as_bytes()));
    }

    #[test]
    fn only_reads_skip_the_csrf_check() {
        assert!(!is_write(&Method::GET));
        assert!(!is_write(&Method::HEAD));
        for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert!(is_write(&m), "{m}");
        }
    }
}
