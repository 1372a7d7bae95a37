//! Serving a service's web page (the built TypeScript of `services/web`) from the service
//! itself: no CDN and no separate web server, because government networks and the tills have
//! no internet. A page is a directory (`index.html`, `app.js`, `app.css`) mounted under a
//! path (`/app/` for residents on the issuance service, `/till/` for merchants on the
//! redemption service); `/` redirects there. Pages get a strict Content-Security-Policy:
//! everything from the service's own origin, nothing inline but styles, and camera access
//! only for the page itself.

use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the built pages are.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebSettings {
    /// The directory `npm run build` writes (`services/web/dist`); each page is a
    /// subdirectory. Relative paths are relative to the working directory.
    pub dir: PathBuf,
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings {
            dir: PathBuf::from("services/web/dist"),
        }
    }
}

/// The policy the pages are served with.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; media-src 'self' blob:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
     form-action 'self'";

/// Mounts the page in `dir` at `mount` (e.g. `/app`), redirects `/` and `mount` to
/// `mount/`. A missing directory (pages not built) is logged and the page answers 404.
pub fn configure(cfg: &mut web::ServiceConfig, mount: &'static str, dir: &Path) {
    if !dir.join("index.html").is_file() {
        tracing::warn!(
            page = mount,
            dir = %dir.display(),
            "page not built (run npm run build in services/web); it answers 404"
        );
        return;
    }
    let target = format!("{mount}/");
    let to_page = move || {
        let target = target.clone();
        web::get().to(move || {
            let target = target.clone();
            async move {
                HttpResponse::Found()
                    .insert_header((header::LOCATION, target))
                    .finish()
            }
        })
    };
    cfg.route("/", to_page()).route(mount, to_page()).service(
        web::scope(mount)
            .wrap(
                DefaultHeaders::new()
                    .add((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
                    .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                    .add((header::REFERRER_POLICY, "no-referrer"))
                    .add(("Permissions-Policy", "camera=(self), microphone=()"))
                    .add((header::CACHE_CONTROL, "no-cache")),
            )
            .service(actix_files::Files::new("", dir).index_file("index.html")),
    );
}
