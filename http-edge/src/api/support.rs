//! What the endpoint handlers share: calling the engine, the per-IP limit,
//! the bearer token, field validation, JSON answers.

use portcullis_engine::domain::{Email, FieldError, Password};
use portcullis_engine::{AuthError, Bearer, Operation};
use zeroize::Zeroizing;

use crate::app::App;
use crate::problem::EdgeError;
use crate::ratelimit::Limited;
use crate::server::{Request, Response};

/// Runs `op` on the engine and waits for its typed reply.
pub(crate) fn call<O: Operation>(app: &App, op: O) -> Result<O::Reply, EdgeError> {
    app.bridge.call(op).map_err(EdgeError::from)
}

/// Admits the request under the per-IP limit of `route`.
pub(crate) fn limit(app: &App, req: &Request<'_>, route: Limited) -> Result<(), EdgeError> {
    app.limits
        .check(route, app.client_ip(req))
        .map_err(|retry_after_secs| {
            metrics::counter!(crate::telemetry::HTTP_RATE_LIMITED_TOTAL).increment(1);
            EdgeError::RateLimited { retry_after_secs }
        })
}

/// The token of `Authorization: Bearer <token>`.
pub(crate) fn bearer(req: &Request<'_>) -> Bearer {
    let v = std::str::from_utf8(req.header("authorization")?).ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

/// The bearer token, or 401 `missing_token` before the body is read.
pub(crate) fn authenticated(req: &Request<'_>) -> Result<Bearer, EdgeError> {
    match bearer(req) {
        Some(t) => Ok(Some(t)),
        None => Err(EdgeError::Auth(AuthError::Unauthenticated(
            portcullis_engine::TokenProblem::Missing,
        ))),
    }
}

/// 400 `invalid_request` listing the fields' problems.
pub(crate) fn validation(errors: Vec<FieldError>) -> EdgeError {
    EdgeError::InvalidBody {
        detail: "one or more fields are invalid".into(),
        errors,
    }
}

/// Validates an email and a password together, reporting both fields' problems.
pub(crate) fn credentials(
    email: &str,
    password: Zeroizing<String>,
    mut errors: Vec<FieldError>,
) -> Result<(Email, Password), EdgeError> {
    let email = Email::parse("email", email)
        .map_err(|e| errors.push(e))
        .ok();
    let password = Password::parse("password", password)
        .map_err(|e| errors.push(e))
        .ok();
    match (email, password) {
        (Some(e), Some(p)) if errors.is_empty() => Ok((e, p)),
        _ => Err(validation(errors)),
    }
}

/// A JSON response from a serializable value.
pub(crate) fn json<T: serde::Serialize>(status: u16, value: &T) -> Result<Response, EdgeError> {
    serde_json::to_vec(value)
        .map(|body| Response::json(status, body))
        .map_err(|e| EdgeError::Auth(AuthError::Internal(format!("cannot encode response: {e}"))))
}

/// The segment of `path` at the template's `{name}` (empty when none).
pub(crate) fn path_param<'p>(template: &str, path: &'p str, name: &str) -> &'p str {
    template
        .split('/')
        .zip(path.split('/'))
        .find(|(t, _)| t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) == Some(name))
        .map_or("", |(_, p)| p)
}

/// The value of query parameter `name`: `Ok(None)` when absent, 400 when
/// given twice (a proxy and the server must never read different values).
pub(crate) fn query_param(
    req: &Request<'_>,
    name: &'static str,
) -> Result<Option<String>, EdgeError> {
    urlencoded_param(req.query.as_bytes(), name)
}

/// The value of `name` in `application/x-www-form-urlencoded` text (a
/// query or a form body): `Ok(None)` when absent, 400 when given twice.
pub(crate) fn urlencoded_param(
    text: &[u8],
    name: &'static str,
) -> Result<Option<String>, EdgeError> {
    let mut found = None;
    for (k, v) in form_urlencoded::parse(text) {
        if k == name {
            if found.is_some() {
                return Err(validation(vec![FieldError {
                    field: name,
                    message: "is given more than once".into(),
                }]));
            }
            found = Some(v.into_owned());
        }
    }
    Ok(found)
}

/// The body of a form post, or 415.
pub(crate) fn form_body<'r>(req: &'r Request<'_>) -> Result<&'r [u8], EdgeError> {
    if crate::json::media_type(req).as_deref() == Some("application/x-www-form-urlencoded") {
        Ok(req.body)
    } else {
        Err(EdgeError::UnsupportedMediaType(
            "application/x-www-form-urlencoded",
        ))
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie(req: &Request<'_>, name: &str) -> Option<String> {
    req.headers_named("cookie")
        .filter_map(|h| std::str::from_utf8(h).ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}
