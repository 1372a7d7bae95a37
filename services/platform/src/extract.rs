//! Request extractors and actix error handlers that turn every malformed input into an
//! [`ApiError`] JSON body (never actix's default plain-text errors).
//!
//! Bodies are read with the size limit from the settings AFTER decompression (`gzip`,
//! `deflate`, `br`, `zstd` as actix supports them), so a small compressed bomb is refused
//! too. [`ApiJson`] replaces `web::Json` so that a bad field is reported by its path
//! (`rule.off: invalid value…`) through `serde_path_to_error`: a body that is not JSON is
//! `MALFORMED_JSON`; well-formed JSON with a field missing, of the wrong type, out of range
//! or unknown is `INVALID_FIELD` naming the field. [`read_body`] gives the raw bytes (signed
//! terminal requests verify them before parsing).

use crate::error::ApiError;
use actix_web::dev::{Decompress, Payload};
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::header;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use futures::future::LocalBoxFuture;
use futures::StreamExt;
use serde::de::DeserializeOwned;

/// Body size limits, registered as app data by the app builder.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Largest JSON body.
    pub json: usize,
    /// Largest CSV body.
    pub csv: usize,
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits {
            json: 16 * 1024,
            csv: 4 * 1024 * 1024,
        }
    }
}

/// A JSON body deserialized into `T`, with field-precise errors.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = limits(req).json;
        let content_type_ok = is_json(req);
        let body = read_body(req, payload.take(), limit);
        Box::pin(async move {
            if !content_type_ok {
                return Err(ApiError::unsupported_media_type("application/json"));
            }
            parse_json(&body.await?).map(ApiJson)
        })
    }
}

/// A `text/csv` body (bulk uploads), size-limited.
#[derive(Debug)]
pub struct CsvBody(pub Bytes);

impl FromRequest for CsvBody {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = limits(req).csv;
        let content_type_ok = media_type(req).is_some_and(|m| m == "text/csv");
        let body = read_body(req, payload.take(), limit);
        Box::pin(async move {
            if !content_type_ok {
                return Err(ApiError::unsupported_media_type("text/csv"));
            }
            body.await.map(CsvBody)
        })
    }
}

/// The body limits registered for the app (defaults when none are).
pub fn limits(req: &HttpRequest) -> BodyLimits {
    req.app_data::<BodyLimits>().copied().unwrap_or_default()
}

/// The media type of the request, lowercase, without parameters.
fn media_type(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next()?.trim().to_ascii_lowercase();
    Some(essence)
}

fn is_json(req: &HttpRequest) -> bool {
    media_type(req).is_some_and(|m| {
        m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
    })
}

/// Reads a whole body, decompressed as its `Content-Encoding` says, at most `limit` bytes
/// after decompression.
///
/// # Errors
/// `PAYLOAD_TOO_LARGE`; `MALFORMED_JSON` when the stream breaks or does not decompress.
pub fn read_body(
    req: &HttpRequest,
    payload: Payload,
    limit: usize,
) -> LocalBoxFuture<'static, Result<Bytes, ApiError>> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let identity_encoding = req.headers().get(header::CONTENT_ENCODING).is_none();
    let mut stream = Decompress::from_headers(payload, req.headers());
    Box::pin(async move {
        if identity_encoding && declared.is_some_and(|len| len > limit) {
            return Err(ApiError::payload_too_large(limit));
        }
        let mut body = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::malformed(format!("the request body could not be read: {e}"))
            })?;
            if body.len() + chunk.len() > limit {
                return Err(ApiError::payload_too_large(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    })
}

/// Parses JSON, naming the field that failed.
///
/// # Errors
/// `MALFORMED_JSON` for text that is not JSON; `INVALID_FIELD` (with `details.field`) for
/// JSON whose values do not fit: missing, of the wrong type, out of range, unknown.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        json_error(&path, &inner)
    })?;
    de.end().map_err(|e| json_error(".", &e))?;
    Ok(value)
}

fn json_error(path: &str, e: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        // A number too large for any number type (`1e400`) is well-formed JSON that serde_json
        // nevertheless classifies as a syntax error: it is the field's value that is wrong.
        Category::Syntax if e.to_string().starts_with("number out of range") => {
            let field = if path == "." || path.is_empty() {
                "body"
            } else {
                path
            };
            ApiError::invalid_field(field, strip_position(&e.to_string()))
        }
        Category::Syntax | Category::Eof | Category::Io => ApiError::malformed(e),
        Category::Data => {
            let message = e.to_string();
            // A missing or unknown field is reported at the object that lacks or has it; the
            // message names the field.
            let root = path == "." || path.is_empty();
            let field = match (root, missing_or_unknown(&message)) {
                (true, Some(name)) => name,
                (true, None) => "body".to_owned(),
                (false, Some(name)) if path != name && !path.ends_with(&format!(".{name}")) => {
                    format!("{path}.{name}")
                }
                (false, _) => path.to_owned(),
            };
            ApiError::invalid_field(field, strip_position(&message))
        }
    }
}

/// The field named by serde's "missing field `x`" / "unknown field `x`" messages.
fn missing_or_unknown(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("unknown field `"))?;
    rest.split('`').next().map(str::to_owned)
}

/// serde_json's message without " at line 1 column 17".
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// For `web::JsonConfig`: the same mapping for any `web::Json` extractor.
pub fn json_error_handler(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let api = match err {
        JsonPayloadError::OverflowKnownLength { limit, .. }
        | JsonPayloadError::Overflow { limit } => ApiError::payload_too_large(limit),
        JsonPayloadError::ContentType => ApiError::unsupported_media_type("application/json"),
        JsonPayloadError::Deserialize(e) => json_error(".", &e),
        other => ApiError::malformed(other),
    };
    api.into()
}

/// For `web::PathConfig`: a path segment of the wrong type (e.g. `/v1/campaigns/abc`).
pub fn path_error_handler(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    let reason = match err {
        PathError::Deserialize(e) => e.to_string(),
        other => other.to_string(),
    };
    ApiError::invalid_field("path", reason).into()
}

/// For `web::QueryConfig`.
pub fn query_error_handler(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let reason = match err {
        QueryPayloadError::Deserialize(e) => e.to_string(),
        other => other.to_string(),
    };
    ApiError::invalid_field("query", reason).into()
}

/// The default service: a path the service has, asked with a method it does not answer,
/// is `405 METHOD_NOT_ALLOWED` with `Allow` (the methods come from the service's OpenAPI
/// document, which lists every route); any other unknown route is a JSON `NOT_FOUND`.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let method = req.method().as_str();
    let allowed = req
        .app_data::<actix_web::web::Data<crate::ops::ApiDocument>>()
        .map(|doc| crate::openapi::allowed_methods(&doc.0, req.path()))
        .unwrap_or_default();
    if allowed.is_empty() || allowed.contains(&method) {
        return Err(ApiError::route_not_found(method, req.path()));
    }
    Err(ApiError::method_not_allowed(method, req.path(), &allowed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        claim_id: uuid_like::Id,
        #[serde(default)]
        nested: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        off: u32,
    }

    mod uuid_like {
        /// A string of 36 characters.
        #[derive(Debug)]
        pub struct Id;
        impl<'de> serde::Deserialize<'de> for Id {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
                let s = String::deserialize(d)?;
                if s.len() == 36 {
                    Ok(Id)
                } else {
                    Err(serde::de::Error::custom("not a UUID"))
                }
            }
        }
    }

    const GOOD: &str = "0191d3a0-0000-7000-8000-000000000000";

    #[test]
    fn syntax_errors_are_malformed_json() {
        let e = parse_json::<Body>(b"{\"claim_id\": ").unwrap_err();
        assert_eq!(e.code(), "MALFORMED_JSON");
        let e = parse_json::<Body>(format!("{{\"claim_id\": \"{GOOD}\"}} trailing").as_bytes())
            .unwrap_err();
        assert_eq!(e.code(), "MALFORMED_JSON");
    }

    #[test]
    fn a_bad_value_is_an_invalid_field_naming_it() {
        let e = parse_json::<Body>(b"{\"claim_id\": \"not-a-uuid\"}").unwrap_err();
        assert_eq!(e.code(), "INVALID_FIELD");
        assert_eq!(e.details().unwrap()["field"], "claim_id");
        let body = format!("{{\"claim_id\": \"{GOOD}\", \"nested\": {{\"off\": -1}}}}");
        let e = parse_json::<Body>(body.as_bytes()).unwrap_err();
        assert_eq!(e.details().unwrap()["field"], "nested.off");
        let body = format!("{{\"claim_id\": \"{GOOD}\", \"nested\": {{\"off\": 4294967296}}}}");
        let e = parse_json::<Body>(body.as_bytes()).unwrap_err();
        assert_eq!(
            (e.code(), e.details().unwrap()["field"].as_str()),
            ("INVALID_FIELD", Some("nested.off"))
        );
    }

    #[test]
    fn missing_and_unknown_fields_are_invalid_fields_naming_them() {
        let e = parse_json::<Body>(b"{}").unwrap_err();
        assert_eq!(e.code(), "INVALID_FIELD");
        assert_eq!(e.details().unwrap()["field"], "claim_id");
        assert!(e.message().contains("missing field `claim_id`"), "{e}");
        let body = format!("{{\"claim_id\": \"{GOOD}\", \"extra\": 1}}");
        let e = parse_json::<Body>(body.as_bytes()).unwrap_err();
        assert_eq!(e.code(), "INVALID_FIELD");
        assert_eq!(e.details().unwrap()["field"], "extra");
    }

    #[test]
    fn a_number_out_of_every_range_is_an_invalid_field() {
        let body = format!("{{\"claim_id\": \"{GOOD}\", \"nested\": {{\"off\": 1e400}}}}");
        let e = parse_json::<Body>(body.as_bytes()).unwrap_err();
        assert_eq!(
            (e.code(), e.details().unwrap()["field"].as_str()),
            ("INVALID_FIELD", Some("nested.off"))
        );
    }

    #[test]
    fn valid_json_parses() {
        let b = parse_json::<Body>(format!("{{\"claim_id\": \"{GOOD}\"}}").as_bytes()).unwrap();
        assert!(b.nested.is_none());
    }
}
