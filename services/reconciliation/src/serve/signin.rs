//! How people prove who they are. An [`Authenticator`] turns a proof into an officer
//! ([`Admin`]: name, role, place); [`sign_in`] then starts the session, sets the cookie and
//! writes the audit entry. Handlers only ever see the session's officer, so the province's
//! single sign-on replaces the key sign-in by adding one authenticator — an OIDC
//! authorization-code exchange whose proof is `{code, state}` and whose officer comes from
//! the verified ID token's claims (name, role, place) — and one route, without touching a
//! handler.
//!
//! Today there are two:
//! - [`ApiKeySignIn`]: an administrator's API key, checked against the hashed
//!   `admin-keys.json` as every service checks it;
//! - [`DevIdp`]: the demo's dev identity provider, which signs in as any officer of
//!   `admin-keys.json` by name. It exists only when `dev_idp.enabled` is set.

use super::audit::Audit;
use super::error::{ApiError, Code};
use super::session::{SessionView, Sessions};
use actix_web::HttpResponse;
use futures::future::{ready, BoxFuture};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use utoipa::ToSchema;
use voucher_platform::admin::{Admin, AdminKeyEntry, AdminKeys};
use voucher_platform::error::Common;

/// Turns a proof of identity into an officer.
pub trait Authenticator: Send + Sync + 'static {
    /// What the person sends.
    type Proof: DeserializeOwned + 'static;
    /// The method recorded with the session and in the audit trail.
    const METHOD: &'static str;

    /// The officer the proof shows, or why not (a 401).
    fn authenticate(&self, proof: Self::Proof) -> BoxFuture<'_, Result<Admin, ApiError>>;

    /// Who the proof claims to be, for the audit entry of a refused sign-in (never a secret).
    fn claimed(proof: &Self::Proof) -> String;
}

/// `POST /v1/session` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyProof {
    /// The administrator's API key (the one the other services accept in `X-Api-Key`).
    pub api_key: String,
}

/// An administrator's API key.
pub struct ApiKeySignIn {
    keys: AdminKeys,
}

impl ApiKeySignIn {
    /// Over the hashed keys of `admin-keys.json`.
    pub fn new(entries: &[AdminKeyEntry]) -> ApiKeySignIn {
        ApiKeySignIn {
            keys: AdminKeys::new(entries),
        }
    }
}

impl Authenticator for ApiKeySignIn {
    type Proof = ApiKeyProof;
    const METHOD: &'static str = "api_key";

    fn authenticate(&self, proof: ApiKeyProof) -> BoxFuture<'_, Result<Admin, ApiError>> {
        Box::pin(ready(
            self.keys
                .find(&proof.api_key)
                .ok_or_else(|| ApiError::new(Common::ApiKeyInvalid)),
        ))
    }

    fn claimed(_: &ApiKeyProof) -> String {
        "(api key)".to_owned()
    }
}

/// `POST /v1/session/dev` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DevProof {
    /// The officer's name, as listed by `GET /v1/session/dev`.
    pub name: String,
}

/// The dev identity provider: any listed officer, by name, without a key.
pub struct DevIdp {
    officers: Vec<Admin>,
}

impl DevIdp {
    /// The officers of `admin-keys.json`.
    pub fn new(entries: &[AdminKeyEntry]) -> DevIdp {
        DevIdp {
            officers: entries
                .iter()
                .map(|e| Admin {
                    name: e.name.clone(),
                    role: e.role,
                    place: e.place,
                })
                .collect(),
        }
    }

    /// Who one may sign in as.
    pub fn officers(&self) -> &[Admin] {
        &self.officers
    }
}

impl Authenticator for DevIdp {
    type Proof = DevProof;
    const METHOD: &'static str = "dev_idp";

    fn authenticate(&self, proof: DevProof) -> BoxFuture<'_, Result<Admin, ApiError>> {
        Box::pin(ready(
            self.officers
                .iter()
                .find(|o| o.name == proof.name)
                .cloned()
                .ok_or_else(|| ApiError::new(Code::OfficerUnknown)),
        ))
    }

    fn claimed(proof: &DevProof) -> String {
        proof.name.chars().take(64).collect()
    }
}

/// Signs in with `authenticator`: on success a session, its cookie and a `sign_in` audit
/// entry; on refusal a `sign_in` audit entry with the refusal's code.
///
/// # Errors
/// The authenticator's refusal; database failure.
pub async fn sign_in<A: Authenticator>(
    authenticator: &A,
    sessions: &Sessions,
    audit: &Audit,
    proof: A::Proof,
) -> Result<HttpResponse, ApiError> {
    let claimed = A::claimed(&proof);
    let officer = match authenticator.authenticate(proof).await {
        Ok(officer) => officer,
        Err(refused) => {
            audit
                .record(
                    Err(&claimed),
                    "session.sign_in",
                    None,
                    refused.code(),
                    Some(serde_json::json!({ "method": A::METHOD })),
                )
                .await;
            return Err(refused);
        }
    };
    let (token, session) = sessions.start(&officer, A::METHOD).await?;
    audit
        .record(
            Ok(&officer),
            "session.sign_in",
            None,
            "ok",
            Some(serde_json::json!({ "method": A::METHOD })),
        )
        .await;
    Ok(HttpResponse::Ok()
        .cookie(sessions.cookie(token))
        .insert_header(("Cache-Control", "no-store"))
        .json(SessionView::from(&session)))
}
