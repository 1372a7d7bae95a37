//! The signed terminal request: [`SignedRequest`] is an extractor that reads the body (size
//! limited), checks the signature headers in this order — timestamp within the skew
//! (`STALE_TIMESTAMP`), a known active key (`TERMINAL_KEY_INVALID`), the HMAC
//! (`BAD_SIGNATURE`), an active merchant (`MERCHANT_NOT_ACTIVE`), the terminal's rate
//! limit — and only then remembers the nonce in Redis (`SET NX EX`; a reuse is
//! `NONCE_REUSED`). A refused request writes nothing anywhere; secrets and signatures are
//! never logged.

use crate::error::{ApiError, Code};
use crate::signing::{self, KEY_HEADER, NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::state::AppState;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{FromRequest, HttpRequest};
use futures::future::LocalBoxFuture;
use futures::StreamExt as _;
use serde::de::DeserializeOwned;
use uuid::Uuid;
use voucher_core::{Category, PlaceCode};

/// The verified terminal behind a request.
#[derive(Debug, Clone)]
pub struct Terminal {
    /// Terminal id.
    pub terminal_id: Uuid,
    /// The key id it signed with.
    pub key_id: String,
    /// Its merchant.
    pub merchant_id: String,
    /// The merchant's category.
    pub category: Category,
    /// The merchant's place (its county when registered in one, else its city).
    pub place: PlaceCode,
}

/// A request whose signature, timestamp and nonce were verified, with its raw body.
#[derive(Debug)]
pub struct SignedRequest {
    /// Who sent it.
    pub terminal: Terminal,
    /// The exact bytes that were signed.
    pub body: Bytes,
    /// The `Idempotency-Key` header, when sent.
    pub idempotency_key: Option<String>,
}

impl SignedRequest {
    /// The body as JSON of type `T`.
    ///
    /// # Errors
    /// `MALFORMED_JSON` (naming the field) for a body that does not fit.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        issuance::extract::parse_json(&self.body).map_err(ApiError::from)
    }

    /// The `Idempotency-Key`, required: 1–128 printable ASCII characters.
    ///
    /// # Errors
    /// `MISSING_IDEMPOTENCY_KEY`, `INVALID_FIELD`.
    pub fn require_idempotency_key(&self) -> Result<&str, ApiError> {
        let key = self.idempotency_key.as_deref().ok_or_else(|| {
            ApiError::new(
                Code::MissingIdempotencyKey,
                "send an Idempotency-Key header",
            )
        })?;
        if key.is_empty() || key.len() > 128 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ApiError::invalid_field(
                "Idempotency-Key",
                "must be 1-128 printable ASCII characters",
            ));
        }
        Ok(key)
    }
}

fn header_text<'a>(req: &'a HttpRequest, name: &str) -> Result<&'a str, ApiError> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                Code::MissingSignature,
                format!("a signed terminal request needs the {name} header"),
            )
        })
}

impl FromRequest for SignedRequest {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| ApiError::internal(anyhow::anyhow!("AppState is not registered")))?;
            let key_id = header_text(&req, KEY_HEADER)?.to_owned();
            let timestamp = header_text(&req, TIMESTAMP_HEADER)?;
            let nonce = header_text(&req, NONCE_HEADER)?.to_owned();
            let signature = header_text(&req, SIGNATURE_HEADER)?.to_owned();
            let timestamp: i64 = timestamp
                .parse()
                .map_err(|_| ApiError::invalid_field("X-Timestamp", "must be Unix seconds"))?;
            if !signing::valid_nonce(&nonce) {
                return Err(ApiError::invalid_field(
                    "X-Nonce",
                    "must be 8-64 characters of A-Z a-z 0-9 _ -",
                ));
            }
            let now = state.clock.now().timestamp();
            let skew = state.settings.signing.max_skew_secs;
            if (now - timestamp).abs() > skew {
                return Err(ApiError::new(
                    Code::StaleTimestamp,
                    format!("X-Timestamp is more than {skew} s away from the service clock"),
                )
                .with_details(serde_json::json!({ "server_time": now })));
            }
            let body =
                read_body(&req, &mut payload, state.settings.server.json_limit_bytes).await?;
            let key = voucher_store::pg::redemptions::terminal_by_key(&state.pg, &key_id).await?;
            let invalid = || {
                ApiError::new(
                    Code::TerminalKeyInvalid,
                    "the terminal key is unknown or revoked",
                )
            };
            let key = key.filter(|k| k.status == "active").ok_or_else(invalid)?;
            let path = req
                .uri()
                .path_and_query()
                .map_or_else(|| req.path().to_owned(), |p| p.as_str().to_owned());
            if !signing::verify_signature(
                &key.secret,
                req.method().as_str(),
                &path,
                timestamp,
                &nonce,
                &body,
                &signature,
            ) {
                return Err(ApiError::new(
                    Code::BadSignature,
                    "the request signature does not match",
                ));
            }
            if key.merchant_status != "active" {
                return Err(ApiError::new(
                    Code::MerchantNotActive,
                    "the merchant is not active",
                ));
            }
            state.limiters.check_terminal(&key_id)?;
            let fresh = state
                .nonces
                .first_use(&key_id, &nonce, state.settings.signing.nonce_ttl_secs)
                .await
                .map_err(ApiError::unavailable)?;
            if !fresh {
                return Err(ApiError::new(
                    Code::NonceReused,
                    "this nonce was already used: a replayed request",
                ));
            }
            let category = key
                .category
                .parse::<Category>()
                .map_err(ApiError::internal)?;
            let place =
                PlaceCode::try_from(u32::try_from(key.county.unwrap_or(key.city)).unwrap_or(0))
                    .map_err(ApiError::internal)?;
            let idempotency_key = req
                .headers()
                .get("idempotency-key")
                .map(|v| v.to_str().map(str::to_owned))
                .transpose()
                .map_err(|_| {
                    ApiError::invalid_field("Idempotency-Key", "must be printable ASCII")
                })?;
            Ok(SignedRequest {
                terminal: Terminal {
                    terminal_id: key.terminal_id,
                    key_id,
                    merchant_id: key.merchant_id,
                    category,
                    place,
                },
                body,
                idempotency_key,
            })
        })
    }
}

/// Reads the whole body, at most `limit` bytes (after decompression).
async fn read_body(
    req: &HttpRequest,
    payload: &mut Payload,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            Code::PayloadTooLarge,
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                Code::MalformedJson,
                format!("the body could not be read: {e}"),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
