//! A thin typed client for the issuance API, as a phone or an administrator's tool uses it.

use anyhow::{bail, Context, Result};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use std::time::Duration;

/// A response: status and JSON body (`Value::Null` when the body is not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: StatusCode,
    /// Parsed body.
    pub body: Value,
}

impl Reply {
    /// The body's stable error code, if it is an error body.
    pub fn code(&self) -> Option<&str> {
        self.body.get("code").and_then(Value::as_str)
    }
}

/// Client for one issuance service.
#[derive(Clone)]
pub struct IssuanceClient {
    base: String,
    http: Client,
}

impl IssuanceClient {
    /// A client for `base` (e.g. `http://127.0.0.1:8080`) keeping up to `pool` idle connections.
    ///
    /// # Errors
    /// The HTTP client could not be built.
    pub fn new(base: &str, pool: usize) -> Result<IssuanceClient> {
        let http = Client::builder()
            .pool_max_idle_per_host(pool)
            // Under the services' 5-second keep-alive: a connection the server is closing is
            // never picked for a request (that race shows up as transport errors in an open
            // loop, where many pooled connections sit idle).
            .pool_idle_timeout(Duration::from_secs(4))
            .timeout(Duration::from_secs(30))
            .build()
            .context("building the HTTP client")?;
        Ok(IssuanceClient {
            base: base.trim_end_matches('/').to_owned(),
            http,
        })
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Reply> {
        let resp = req.send().await.context("sending the request")?;
        let status = resp.status();
        let bytes = resp.bytes().await.context("reading the response")?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Reply { status, body })
    }

    /// GET with an optional admin key or bearer token.
    ///
    /// # Errors
    /// Transport failure.
    pub async fn get(&self, path: &str, auth: Auth<'_>) -> Result<Reply> {
        self.send(auth.apply(self.http.get(format!("{}{path}", self.base))))
            .await
    }

    /// POST a JSON body.
    ///
    /// # Errors
    /// Transport failure.
    pub async fn post_json(&self, path: &str, auth: Auth<'_>, body: &Value) -> Result<Reply> {
        self.send(auth.apply(self.http.post(format!("{}{path}", self.base)).json(body)))
            .await
    }

    /// POST a CSV body.
    ///
    /// # Errors
    /// Transport failure.
    pub async fn post_csv(&self, path: &str, auth: Auth<'_>, csv: String) -> Result<Reply> {
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, "text/csv")
            .body(csv);
        self.send(auth.apply(req)).await
    }

    /// POST raw bytes with a content type (a document upload).
    ///
    /// # Errors
    /// Transport failure.
    pub async fn post_bytes(
        &self,
        path: &str,
        auth: Auth<'_>,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<Reply> {
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(bytes);
        self.send(auth.apply(req)).await
    }

    /// PUT a JSON body.
    ///
    /// # Errors
    /// Transport failure.
    pub async fn put_json(&self, path: &str, auth: Auth<'_>, body: &Value) -> Result<Reply> {
        self.send(auth.apply(self.http.put(format!("{}{path}", self.base)).json(body)))
            .await
    }

    /// Waits until `/readyz` answers 200.
    ///
    /// # Errors
    /// Not ready within `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(r) = self.get("/readyz", Auth::None).await {
                if r.status == StatusCode::OK {
                    return Ok(());
                }
            }
            if tokio::time::Instant::now() > deadline {
                bail!("{} was not ready within {timeout:?}", self.base);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Claims a voucher: `POST /v1/campaigns/{id}/claims`.
    ///
    /// # Errors
    /// Transport failure.
    pub async fn claim(&self, bearer: &str, campaign: i64, claim_id: uuid::Uuid) -> Result<Reply> {
        let body = serde_json::json!({ "claim_id": claim_id });
        self.post_json(
            &format!("/v1/campaigns/{campaign}/claims"),
            Auth::Bearer(bearer),
            &body,
        )
        .await
    }
}

/// How a request authenticates.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    /// Public endpoint.
    None,
    /// A resident's identity token.
    Bearer(&'a str),
    /// An administrator's API key.
    ApiKey(&'a str),
}

impl Auth<'_> {
    fn apply(self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::None => req,
            Auth::Bearer(t) => req.bearer_auth(t),
            Auth::ApiKey(k) => req.header("x-api-key", k),
        }
    }
}

/// The administrator API key of `place` from `<secrets_dir>/admin-keys.plain.json` (written
/// by `issuance keygen`).
///
/// # Errors
/// The file is missing or has no key for the place.
pub fn admin_key(secrets_dir: &std::path::Path, place: u32) -> Result<String> {
    let keys = voucher_platform::secrets::SecretsDir::new(secrets_dir).plain_admin_keys()?;
    keys.into_iter()
        .find(|k| k.place.get() == place)
        .map(|k| k.key)
        .with_context(|| format!("no admin key for place {place}"))
}
