//! Request extractors and actix error handlers that turn every malformed input into an
//! [`ApiError`] JSON body (never actix's default plain-text errors).
//!
//! [`ApiJson`] replaces `web::Json` so that a bad field is reported by its path
//! (`rule.off: invalid value…`) through `serde_path_to_error`; bodies are read with the
//! size limit from the settings, after decompression, so a small gzip bomb is refused too.

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
                return Err(ApiError::UnsupportedMediaType {
                    expected: "application/json",
                });
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
                return Err(ApiError::UnsupportedMediaType {
                    expected: "text/csv",
                });
            }
            body.await.map(CsvBody)
        })
    }
}

fn limits(req: &HttpRequest) -> BodyLimits {
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

/// Reads a whole body, at most `limit` bytes after decompression.
fn read_body(
    req: &HttpRequest,
    payload: Payload,
    limit: usize,
) -> LocalBoxFuture<'static, Result<Bytes, ApiError>> {
    let too_large = move || {
        ApiError::PayloadTooLarge(format!(
            "the request body is larger than the limit of {limit} bytes"
        ))
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let identity_encoding = req.headers().get(header::CONTENT_ENCODING).is_none();
    let mut stream = Decompress::from_headers(payload, req.headers());
    Box::pin(async move {
        if identity_encoding && declared.is_some_and(|len| len > limit) {
            return Err(too_large());
        }
        let mut body = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::malformed(format!("the request body could not be read: {e}"))
            })?;
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    })
}

/// Parses JSON, naming the field that failed.
///
/// # Errors
/// [`ApiError::MalformedJson`], naming the field when the JSON was well formed but a value
/// did not fit (wrong type, missing, out of range: the types parse, so these are the same
/// kind of error as a syntax error; `INVALID_FIELD` is kept for domain validation).
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
        Category::Syntax | Category::Eof | Category::Io => ApiError::malformed(e),
        Category::Data => {
            let field = (path != "." && !path.is_empty()).then(|| path.to_owned());
            ApiError::MalformedJson {
                field,
                reason: e.to_string(),
            }
        }
    }
}

/// For `web::JsonConfig`: the same mapping for any `web::Json` extractor.
pub fn json_error_handler(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let api = match err {
        JsonPayloadError::OverflowKnownLength { limit, .. }
        | JsonPayloadError::Overflow { limit } => ApiError::PayloadTooLarge(format!(
            "the request body is larger than the limit of {limit} bytes"
        )),
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType {
            expected: "application/json",
        },
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

/// The default service: any unknown route is a JSON `NOT_FOUND`.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound {
        method: req.method().to_string(),
        path: req.path().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[allow(dead_code)]
        claim_id: uuid::Uuid,
        #[allow(dead_code)]
        #[serde(default)]
        nested: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    struct Inner {
        #[allow(dead_code)]
        off: u32,
    }

    #[test]
    fn syntax_errors_are_malformed_json() {
        let e = parse_json::<Body>(b"{\"claim_id\": ").unwrap_err();
        assert_eq!(e.code(), Code::MalformedJson);
        let e = parse_json::<Body>(
            b"{\"claim_id\": \"0191d3a0-0000-7000-8000-000000000000\"} trailing",
        )
        .unwrap_err();
        assert_eq!(e.code(), Code::MalformedJson);
    }

    #[test]
    fn a_bad_value_names_its_field() {
        let e = parse_json::<Body>(b"{\"claim_id\": \"not-a-uuid\"}").unwrap_err();
        assert_eq!(e.code(), Code::MalformedJson);
        assert!(e.to_string().contains("`claim_id`"), "{e}");
        let e = parse_json::<Body>(
            b"{\"claim_id\": \"0191d3a0-0000-7000-8000-000000000000\", \"nested\": {\"off\": -1}}",
        )
        .unwrap_err();
        assert!(e.to_string().contains("`nested.off`"), "{e}");
    }

    #[test]
    fn a_missing_field_is_named_in_the_reason() {
        let e = parse_json::<Body>(b"{}").unwrap_err();
        assert_eq!(e.code(), Code::MalformedJson);
        assert!(e.to_string().contains("missing field `claim_id`"), "{e}");
    }

    #[test]
    fn valid_json_parses() {
        let b = parse_json::<Body>(b"{\"claim_id\": \"0191d3a0-0000-7000-8000-000000000000\"}")
            .unwrap();
        assert!(b.nested.is_none());
    }
}

#[cfg(test)]
mod http_tests {
    use super::*;
    use actix_web::{test, web, App};
    use serde_json::Value;

    #[derive(Debug, serde::Deserialize)]
    struct Claim {
        claim_id: uuid::Uuid,
    }

    async fn echo(body: ApiJson<Claim>) -> HttpResponse {
        HttpResponse::Ok().body(body.0.claim_id.to_string())
    }

    async fn id(path: web::Path<i64>) -> HttpResponse {
        HttpResponse::Ok().body(path.into_inner().to_string())
    }

    async fn csv(body: CsvBody) -> HttpResponse {
        HttpResponse::Ok().body(body.0.len().to_string())
    }

    macro_rules! app {
        () => {
            test::init_service(
                App::new()
                    .app_data(BodyLimits { json: 64, csv: 32 })
                    .app_data(web::PathConfig::default().error_handler(path_error_handler))
                    .route("/claims", web::post().to(echo))
                    .route("/campaigns/{id}", web::get().to(id))
                    .route("/csv", web::post().to(csv))
                    .default_service(web::to(not_found)),
            )
            .await
        };
    }

    async fn error_of(resp: actix_web::dev::ServiceResponse) -> (u16, Value) {
        let status = resp.status().as_u16();
        let body: Value = test::read_body_json(resp).await;
        (status, body)
    }

    #[actix_web::test]
    async fn malformed_json_is_a_json_400() {
        let app = app!();
        let req = test::TestRequest::post()
            .uri("/claims")
            .insert_header(("content-type", "application/json"))
            .set_payload("{\"claim_id\": ")
            .to_request();
        let (status, body) = error_of(test::call_service(&app, req).await).await;
        assert_eq!(status, 400);
        assert_eq!(body["code"], "MALFORMED_JSON");
        assert_eq!(body["type"], "invalid_request");
        assert!(body["message"].as_str().unwrap().contains("not valid JSON"));
    }

    #[actix_web::test]
    async fn a_bad_field_names_it() {
        let app = app!();
        let req = test::TestRequest::post()
            .uri("/claims")
            .insert_header(("content-type", "application/json"))
            .set_payload("{\"claim_id\": 5}")
            .to_request();
        let (status, body) = error_of(test::call_service(&app, req).await).await;
        assert_eq!(status, 400);
        assert_eq!(body["details"]["field"], "claim_id");
    }

    #[actix_web::test]
    async fn the_wrong_content_type_is_415() {
        let app = app!();
        let req = test::TestRequest::post()
            .uri("/claims")
            .insert_header(("content-type", "text/plain"))
            .set_payload("hi")
            .to_request();
        let (status, body) = error_of(test::call_service(&app, req).await).await;
        assert_eq!(status, 415);
        assert_eq!(body["code"], "UNSUPPORTED_MEDIA_TYPE");
        let req = test::TestRequest::post()
            .uri("/csv")
            .insert_header(("content-type", "application/json"))
            .to_request();
        let (status, _) = error_of(test::call_service(&app, req).await).await;
        assert_eq!(status, 415);
    }

    #[actix_web::test]
    async fn an_oversize_body_is_413() {
        let app = app!();
        let big = format!("{{\"claim_id\": \"{}\"}}", "x".repeat(100));
        let req = test::TestRequest::post()
            .uri("/claims")
            .insert_header(("content-type", "application/json; charset=utf-8"))
            .set_payload(big)
            .to_request();
        let (status, body) = error_of(test::call_service(&app, req).await).await;
        assert_eq!(status, 413);
        assert_eq!(body["code"], "PAYLOAD_TOO_LARGE");
        let req = test::TestRequest::post()
            .uri("/csv")
            .insert_header(("content-type", "text/csv"))
            .set_payload("person_id\n".repeat(10))
            .to_request();
        let (status, _) = error_of(test::call_service(&app, req).await).await;
        assert_eq!(status, 413);
    }

    #[actix_web::test]
    async fn a_good_body_passes() {
        let app = app!();
        let req = test::TestRequest::post()
            .uri("/claims")
            .insert_header(("content-type", "application/json"))
            .set_payload("{\"claim_id\": \"0191d3a0-0000-7000-8000-000000000000\"}")
            .to_request();
        let resp = test::call_service(&app, req).await;
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(
            test::read_body(resp).await,
            "0191d3a0-0000-7000-8000-000000000000"
        );
    }

    #[actix_web::test]
    async fn unknown_routes_and_bad_path_params_are_json() {
        let app = app!();
        let (status, body) = error_of(
            test::call_service(&app, test::TestRequest::get().uri("/nope").to_request()).await,
        )
        .await;
        assert_eq!((status, body["code"].as_str()), (404, Some("NOT_FOUND")));
        let req = test::TestRequest::get().uri("/campaigns/abc").to_request();
        let (status, body) = error_of(test::call_service(&app, req).await).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("INVALID_FIELD"))
        );
        assert_eq!(body["details"]["field"], "path");
    }
}
