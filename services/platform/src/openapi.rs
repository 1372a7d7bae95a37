//! What every service's OpenAPI document gets from the shared plumbing, so that the
//! document lists every status a route can answer without each handler repeating them:
//!
//! - every operation: `429 RATE_LIMITED` (the per-IP limit runs before every route) and
//!   `503 SERVICE_UNAVAILABLE` / `DEADLINE_EXCEEDED` (the deadline bounds every route), both
//!   with `Retry-After`;
//! - an operation with a security requirement: `401` (credentials missing, malformed, expired
//!   or unknown) and `403` (authenticated, not allowed);
//! - an operation with a request body: `400` (`MALFORMED_JSON`, `INVALID_FIELD`), `413`
//!   (`PAYLOAD_TOO_LARGE`) and `415` (`UNSUPPORTED_MEDIA_TYPE`), which the body extractors
//!   answer before the handler runs;
//! - an operation with path, query or header parameters: `400 INVALID_FIELD` (a path id that
//!   does not parse, e.g. `/v1/admin/programs/9223372036854775808`); with path parameters,
//!   `404` (no such thing).
//!
//! A status the handler's annotation already documents is left as the handler wrote it
//! (its description names the route's own codes). A new route gets all of this without
//! doing anything: [`crate::ops::with_operations`] applies it to the whole document.
//!
//! [`allowed_methods`] reads the same document as the route table, for `405` answers.

use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::{Content, Header, Object, Ref, RefOr, Type};

/// The name of the shared error body's schema.
const ERROR_BODY: &str = "ErrorBody";

/// Adds the plumbing's responses to every operation of `doc` (see the module doc).
pub fn add_common_responses(doc: &mut utoipa::openapi::OpenApi) {
    for item in doc.paths.paths.values_mut() {
        let shared_params = item.parameters.clone().unwrap_or_default();
        for op in operations_mut(item) {
            complete(op, &shared_params);
        }
    }
}

/// The modifier form of [`add_common_responses`], for `#[openapi(modifiers(…))]`.
pub struct CommonResponses;

impl utoipa::Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        add_common_responses(openapi);
    }
}

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.options.as_mut(),
        item.head.as_mut(),
        item.patch.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

fn complete(op: &mut Operation, shared_params: &[utoipa::openapi::path::Parameter]) {
    let params: Vec<ParameterIn> = op
        .parameters
        .iter()
        .flatten()
        .chain(shared_params)
        .map(|p| p.parameter_in.clone())
        .collect();
    let has_path_params = params.iter().any(|p| matches!(p, ParameterIn::Path));
    let secured = op.security.as_ref().is_some_and(|reqs| {
        reqs.iter().any(|r| {
            serde_json::to_value(r)
                .ok()
                .and_then(|v| v.as_object().map(|o| !o.is_empty()))
                .unwrap_or(false)
        })
    });
    let mut add = |status: &str, response: Response| {
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::T(response));
    };
    if op.request_body.is_some() {
        add(
            "400",
            error(
                "MALFORMED_JSON (the body is not JSON) or INVALID_FIELD (`details.field` names a \
                 field that is missing, of the wrong type, out of range or unknown)",
            ),
        );
        add(
            "413",
            error("PAYLOAD_TOO_LARGE: the body is over the limit (after decompression)"),
        );
        add(
            "415",
            error("UNSUPPORTED_MEDIA_TYPE: the body has the wrong Content-Type"),
        );
    }
    if !params.is_empty() {
        add(
            "400",
            error(
                "INVALID_FIELD: a path, query or header parameter does not parse (`details.field`)",
            ),
        );
    }
    if has_path_params {
        add(
            "404",
            error("The thing the path names does not exist (for you)"),
        );
    }
    if secured {
        add(
            "401",
            error("The credentials are missing, malformed, expired or unknown (see the security scheme)"),
        );
        add(
            "403",
            error("Authenticated, but not allowed to do this here"),
        );
    }
    add(
        "429",
        retry_after(error("RATE_LIMITED: retry after `Retry-After` seconds")),
    );
    add(
        "503",
        retry_after(error(
            "SERVICE_UNAVAILABLE (a dependency is down) or DEADLINE_EXCEEDED: retry after \
             `Retry-After` seconds",
        )),
    );
}

fn error(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name(ERROR_BODY))),
        )
        .build()
}

fn retry_after(mut response: Response) -> Response {
    response.headers.insert(
        "Retry-After".to_owned(),
        Header::new(Object::with_type(Type::Integer)),
    );
    response
}

/// The methods the document gives to the routes that match `path` (a request path: each
/// `{name}` of a template matches one non-empty segment), in a stable order; `/openapi.json`
/// (served by every service, not described in its own document) answers `GET`.
pub fn allowed_methods(doc: &utoipa::openapi::OpenApi, path: &str) -> Vec<&'static str> {
    let mut allowed = Vec::new();
    if path == "/openapi.json" {
        allowed.push("GET");
    }
    for (template, item) in &doc.paths.paths {
        if !template_matches(template, path) {
            continue;
        }
        for (method, op) in [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("PATCH", &item.patch),
            ("DELETE", &item.delete),
        ] {
            if op.is_some() && !allowed.contains(&method) {
                allowed.push(method);
            }
        }
    }
    allowed
}

fn template_matches(template: &str, path: &str) -> bool {
    let mut t = template.split('/');
    let mut p = path.split('/');
    loop {
        match (t.next(), p.next()) {
            (None, None) => return true,
            (Some(ts), Some(ps)) => {
                let variable = ts.starts_with('{') && ts.ends_with('}');
                if !(variable && !ps.is_empty() || ts == ps) {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::OpenApi;

    #[derive(utoipa::ToSchema, serde::Deserialize)]
    #[allow(dead_code)]
    struct Thing {
        n: u32,
    }

    /// A thing.
    #[utoipa::path(post, path = "/v1/things/{id}", params(("id" = i64, Path)), request_body = Thing,
        security(("api_key" = [])),
        responses((status = 201), (status = 400, description = "mine")))]
    #[allow(dead_code)]
    fn post_thing() {}

    /// Things.
    #[utoipa::path(get, path = "/v1/things", responses((status = 200)))]
    #[allow(dead_code)]
    fn list_things() {}

    #[derive(OpenApi)]
    #[openapi(paths(post_thing, list_things), modifiers(&CommonResponses))]
    struct Doc;

    #[test]
    fn every_operation_gets_the_statuses_its_shape_can_answer() {
        let doc = serde_json::to_value(Doc::openapi()).unwrap();
        let post = &doc["paths"]["/v1/things/{id}"]["post"]["responses"];
        for status in [
            "201", "400", "401", "403", "404", "413", "415", "429", "503",
        ] {
            assert!(post[status].is_object(), "POST lacks {status}: {post}");
        }
        assert_eq!(
            post["400"]["description"], "mine",
            "the handler's own stays"
        );
        assert_eq!(
            post["415"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody"
        );
        assert!(post["503"]["headers"]["Retry-After"].is_object());
        let get = &doc["paths"]["/v1/things"]["get"]["responses"];
        for status in ["400", "401", "404", "413", "415"] {
            assert!(
                get[status].is_null(),
                "GET without params or auth got {status}"
            );
        }
        assert!(get["429"].is_object());
    }

    #[test]
    fn allowed_methods_come_from_the_matching_templates() {
        let doc = Doc::openapi();
        assert_eq!(allowed_methods(&doc, "/v1/things/42"), vec!["POST"]);
        assert_eq!(allowed_methods(&doc, "/v1/things"), vec!["GET"]);
        assert!(allowed_methods(&doc, "/v1/things/").is_empty());
        assert!(allowed_methods(&doc, "/v1/things/1/x").is_empty());
        assert_eq!(allowed_methods(&doc, "/openapi.json"), vec!["GET"]);
    }
}

/// What a request parser accepts for one property, declared in the document where the request
/// type itself (kept free of documentation concerns) does not say it.
#[derive(Debug, Clone, Copy)]
pub enum Bound {
    /// An integer within `min..=max`.
    Int(i64, i64),
    /// A string of `min..=max` characters.
    Len(usize, usize),
    /// A string matching the pattern.
    Pattern(&'static str),
}

/// Declares each `(schema, property, bound)` of `bounds` on the document's component schemas
/// (a schema or property the document does not have is passed over).
pub fn declare_bounds(doc: &mut utoipa::openapi::OpenApi, bounds: &[(&str, &str, Bound)]) {
    use utoipa::openapi::Schema;
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    for (schema, property, bound) in bounds {
        let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(*schema) else {
            continue;
        };
        let Some(RefOr::T(Schema::Object(prop))) = object.properties.get_mut(*property) else {
            continue;
        };
        match bound {
            Bound::Int(min, max) => {
                prop.minimum = Some((*min).into());
                prop.maximum = Some((*max).into());
            }
            Bound::Len(min, max) => {
                prop.min_length = Some(*min);
                prop.max_length = Some(*max);
            }
            Bound::Pattern(p) => prop.pattern = Some((*p).to_owned()),
        }
    }
}

/// The `(schema, property)` pairs of `bounds` that `doc` does not carry with a bound: a
/// property renamed or a schema gone leaves its declared limit nowhere, which each service's
/// tests catch with this.
pub fn misplaced_bounds(
    doc: &utoipa::openapi::OpenApi,
    bounds: &[(&str, &str, Bound)],
) -> Vec<String> {
    let doc = serde_json::to_value(doc).unwrap_or_default();
    bounds
        .iter()
        .filter(|(schema, property, _)| {
            let prop = &doc["components"]["schemas"][schema]["properties"][property];
            !["minimum", "maxLength", "pattern"]
                .iter()
                .any(|k| !prop[k].is_null())
        })
        .map(|(schema, property, _)| format!("{schema}.{property}"))
        .collect()
}
