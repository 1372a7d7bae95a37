//! A merchant's checkout terminal as a vendor would build it: every request signed with the
//! terminal's HMAC key ([`voucher_core::signing::sign_request`]), every checkout with an
//! `Idempotency-Key`. Also the administrators' calls that register merchants and terminals.

use crate::client::Reply;
use anyhow::{Context, Result};
use reqwest::Client;
use serde_json::{json, Value};
use std::time::Duration;

/// One terminal of one merchant.
#[derive(Clone)]
pub struct Terminal {
    base: String,
    http: Client,
    /// The merchant.
    pub merchant_id: String,
    /// The terminal's key id.
    pub key_id: String,
    secret: String,
}

/// A merchant to register.
#[derive(Debug, Clone)]
pub struct MerchantSpec<'a> {
    /// Merchant id.
    pub id: &'a str,
    /// Name.
    pub name: &'a str,
    /// Unified social credit code (18 characters).
    pub credit_code: &'a str,
    /// Category (`catering`, `home_furnishing`, …).
    pub category: &'a str,
    /// City code.
    pub city: u32,
    /// County code, if any.
    pub county: Option<u32>,
}

/// Registers a merchant, approves it for `programs` and creates one terminal (administrator
/// `api_key` of the merchant's place). Returns the terminal.
///
/// # Errors
/// HTTP failures or a refusal.
pub async fn register(
    base: &str,
    api_key: &str,
    m: &MerchantSpec<'_>,
    programs: &[i64],
) -> Result<Terminal> {
    let http = Client::builder()
        .pool_idle_timeout(Duration::from_secs(4))
        .timeout(Duration::from_secs(30))
        .build()?;
    let admin = |path: &str, body: Value| {
        http.post(format!("{base}{path}"))
            .header("x-api-key", api_key)
            .json(&body)
            .send()
    };
    let created = reply(
        admin(
            "/v1/admin/merchants",
            json!({
                "id": m.id, "name": m.name, "credit_code": m.credit_code, "category": m.category,
                "city": m.city, "county": m.county, "settlement_account": format!("BANK-{}", m.id)
            }),
        )
        .await?,
    )
    .await?;
    anyhow::ensure!(
        created.status.is_success(),
        "creating merchant {}: {} {}",
        m.id,
        created.status,
        created.body
    );
    for program in programs {
        let path = format!("/v1/admin/merchants/{}/approvals", m.id);
        let r = reply(admin(&path, json!({ "program_id": program })).await?).await?;
        anyhow::ensure!(
            r.status.is_success(),
            "approving {}: {} {}",
            m.id,
            r.status,
            r.body
        );
    }
    let path = format!("/v1/admin/merchants/{}/terminals", m.id);
    let t = reply(admin(&path, json!({})).await?).await?;
    anyhow::ensure!(
        t.status.is_success(),
        "terminal for {}: {} {}",
        m.id,
        t.status,
        t.body
    );
    let text = |k: &str| {
        t.body
            .get(k)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .context("terminal credentials")
    };
    Ok(Terminal {
        base: base.to_owned(),
        http,
        merchant_id: m.id.to_owned(),
        key_id: text("key_id")?,
        secret: text("secret")?,
    })
}

impl Terminal {
    /// Creates another terminal of the same merchant (administrator `api_key`), with its own
    /// HTTP client — its own connection, as a separate device would have.
    ///
    /// # Errors
    /// HTTP failures or a refusal.
    pub async fn another(&self, api_key: &str) -> Result<Terminal> {
        let http = Client::builder()
            .pool_idle_timeout(Duration::from_secs(4))
            .timeout(Duration::from_secs(30))
            .build()?;
        let path = format!("/v1/admin/merchants/{}/terminals", self.merchant_id);
        let t = reply(
            http.post(format!("{}{path}", self.base))
                .header("x-api-key", api_key)
                .json(&json!({}))
                .send()
                .await?,
        )
        .await?;
        anyhow::ensure!(
            t.status.is_success(),
            "terminal for {}: {} {}",
            self.merchant_id,
            t.status,
            t.body
        );
        let text = |k: &str| {
            t.body
                .get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .context("terminal credentials")
        };
        Ok(Terminal {
            base: self.base.clone(),
            http,
            merchant_id: self.merchant_id.clone(),
            key_id: text("key_id")?,
            secret: text("secret")?,
        })
    }

    /// A signed `POST` of `body` to `path`, with `idempotency_key` when given.
    ///
    /// # Errors
    /// HTTP failures.
    pub async fn post(
        &self,
        path: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<Reply> {
        let bytes = serde_json::to_vec(body)?;
        let now = chrono::Utc::now().timestamp();
        let headers = voucher_core::signing::sign_request(
            &self.key_id,
            &self.secret,
            "POST",
            path,
            now,
            &bytes,
        )
        .map_err(|e| anyhow::anyhow!("signing: {e}"))?;
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        for (name, value) in headers {
            req = req.header(name, value);
        }
        if let Some(key) = idempotency_key {
            req = req.header("idempotency-key", key);
        }
        reply(req.body(bytes).send().await?).await
    }

    /// One-step redemption of a scanned dynamic `code` for an order.
    ///
    /// # Errors
    /// HTTP failures.
    pub async fn redeem(
        &self,
        code: &str,
        order_amount_fen: i64,
        order_ref: &str,
    ) -> Result<Reply> {
        let body =
            json!({ "code": code, "order_amount_fen": order_amount_fen, "order_ref": order_ref });
        self.post("/v1/redemptions", &body, Some(order_ref)).await
    }
}

async fn reply(resp: reqwest::Response) -> Result<Reply> {
    let status = resp.status();
    let body = resp.json::<Value>().await.unwrap_or(Value::Null);
    Ok(Reply { status, body })
}
