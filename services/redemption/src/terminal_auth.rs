//! The signed terminal request: [`SignedRequest`] is an extractor that reads the body (size
//! limited), checks the signature headers in this order — timestamp within the skew
//! (`STALE_TIMESTAMP`), a known active key (`TERMINAL_KEY_INVALID`), the HMAC
//! (`BAD_SIGNATURE`), an active merchant (`MERCHANT_NOT_ACTIVE`), the terminal's rate
//! limit — and only then remembers the nonce in Redis (`SET NX EX`; a reuse is
//! `NONCE_REUSED`). A refused request writes nothing anywhere; secrets and signatures are
//! never logged. The key's secret is stored sealed ([`crate::terminal_secrets`]) and opened
//! in memory for the check only.

use crate::error::{ApiError, Code};
use crate::settings::Settings;
use crate::terminal_secrets::{Keyring, SecretError};
use actix_web::dev::Payload;
use actix_web::web::{self, Bytes};
use actix_web::{FromRequest, HttpRequest};
use futures::future::LocalBoxFuture;
use secrecy::ExposeSecret as _;
use serde::de::DeserializeOwned;
use sqlx::PgPool;
use std::sync::Arc;
use voucher_core::signing::{self, KEY_HEADER, NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use voucher_core::{Category, Clock, MerchantId, PlaceCode, TerminalId, TerminalKeyId};
use voucher_platform::limit::Limiter;
use voucher_store::nonces::Nonces;
use voucher_store::pg::merchants::MerchantStatus;
use voucher_store::pg::terminals::{self, TerminalStatus};

/// What verifying a terminal request takes (registered as app data on its own).
pub struct TerminalAuth {
    /// Where terminal keys are.
    pub pg: PgPool,
    /// Nonces seen.
    pub nonces: Nonces,
    /// Now (injectable for tests).
    pub clock: Arc<dyn Clock>,
    /// Skew, nonce window, body limit.
    pub settings: Arc<Settings>,
    /// Requests per terminal key.
    pub limit: Arc<Limiter<String>>,
    /// Opens the stored secrets.
    pub keyring: Arc<Keyring>,
}

/// The verified terminal behind a request.
#[derive(Debug, Clone)]
pub struct Terminal {
    /// Terminal id.
    pub terminal_id: TerminalId,
    /// The key id it signed with.
    pub key_id: TerminalKeyId,
    /// Its merchant.
    pub merchant_id: MerchantId,
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
    /// The `Idempotency-Key` header, when sent (see `crate::checkout::idempotency`).
    pub idempotency_key: Option<String>,
}

impl SignedRequest {
    /// The body as JSON of type `T`.
    ///
    /// # Errors
    /// `MALFORMED_JSON` for a body that is not JSON, `INVALID_FIELD` (naming the field) for
    /// one that does not fit.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        voucher_platform::extract::parse_json(&self.body)
    }
}

fn header_text<'a>(req: &'a HttpRequest, name: &str) -> Result<&'a str, ApiError> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ApiError::new(Code::MissingSignature)
                .with_message(format!("a signed terminal request needs the {name} header"))
        })
}

impl FromRequest for SignedRequest {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<TerminalAuth>>()
                .cloned()
                .ok_or_else(|| {
                    ApiError::internal(anyhow::anyhow!("TerminalAuth is not registered"))
                })?;
            let key_text = header_text(&req, KEY_HEADER)?.to_owned();
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
                return Err(ApiError::new(Code::StaleTimestamp)
                    .with_message(format!(
                        "X-Timestamp is more than {skew} s away from the service clock"
                    ))
                    .with_details(serde_json::json!({ "server_time": now })));
            }
            let body = voucher_platform::extract::read_body(
                &req,
                payload,
                state.settings.server.json_limit_bytes,
            )
            .await?;
            let invalid = || ApiError::new(Code::TerminalKeyInvalid);
            // A key id of the wrong shape is no key of ours: refused like an unknown one,
            // without asking the database.
            let key_id = TerminalKeyId::parse(&key_text).map_err(|_| invalid())?;
            let key = terminals::terminal_by_key(&state.pg, &key_id).await?;
            let key = key
                .filter(|k| k.status == TerminalStatus::Active)
                .ok_or_else(invalid)?;
            let path = req
                .uri()
                .path_and_query()
                .map_or_else(|| req.path().to_owned(), |p| p.as_str().to_owned());
            let secret = match state.keyring.open(key.terminal_id, &key_id, &key.secret) {
                Ok(secret) => secret,
                Err(e @ SecretError::UnknownKek { .. }) => return Err(ApiError::internal(e)),
                Err(e @ SecretError::NotSealed(_)) => {
                    tracing::warn!("terminal key refused: {e}");
                    return Err(invalid());
                }
                Err(e) => {
                    // Not the caller's doing, but nothing it may use either: refused like an
                    // unknown key, and told to the operator.
                    tracing::error!("terminal key refused: {e}");
                    return Err(invalid());
                }
            };
            if !signing::verify_signature(
                secret.expose_secret(),
                req.method().as_str(),
                &path,
                timestamp,
                &nonce,
                &body,
                &signature,
            ) {
                return Err(ApiError::new(Code::BadSignature));
            }
            if key.merchant_status != MerchantStatus::Active {
                return Err(ApiError::new(Code::MerchantNotActive));
            }
            state.limit.check(&key_text)?;
            let fresh = state
                .nonces
                .first_use(
                    key_id.as_str(),
                    &nonce,
                    state.settings.signing.nonce_ttl_secs,
                )
                .await?;
            if !fresh {
                return Err(ApiError::new(Code::NonceReused));
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
