//! Logging: `tracing` with JSON (production) or pretty (a terminal) output and an env filter,
//! and the request id. Requests are traced by `tracing-actix-web`'s `TracingLogger`, which
//! records method, route and status but no headers, so bearer tokens, API keys and terminal
//! signatures never reach a log line; nor do handlers log them.

use crate::settings::{LogFormat, LogSettings};
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::HttpMessage;
use tracing_actix_web::RequestId;
use tracing_subscriber::EnvFilter;

/// The response header carrying the request id that is also in every log line of the request.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// actix's HTTP/1 dispatcher logs a request it cannot parse (a header with bytes no header may
/// hold, found by API fuzzing) at ERROR and answers it 400 itself: a client's mistake, which
/// must not page anyone (STYLE rule 14). Silenced unless the filter names `actix_http`.
const QUIET_DISPATCHER: &str = "actix_http::h1::dispatcher=off";

/// Installs the global subscriber. `RUST_LOG`, when set, wins over `settings.level`.
/// A second call (tests starting several apps) is a no-op.
pub fn init(settings: &LogSettings) {
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| settings.level.clone());
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let filter = match QUIET_DISPATCHER.parse() {
        Ok(quiet) if !directives.contains("actix_http") => filter.add_directive(quiet),
        _ => filter,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match settings.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Pretty => builder.pretty().try_init(),
    };
    // Already installed (by an earlier app in the same test process): keep that one.
    drop(result);
}

/// Middleware (inside `TracingLogger`): returns the request id as `x-request-id`.
pub async fn request_id_header(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req.extensions().get::<RequestId>().map(|id| id.to_string());
    let mut res = next.call(req).await?;
    if let Some(value) = id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        res.headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
    }
    Ok(res)
}
