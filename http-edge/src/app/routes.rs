//! The route table: method and path to handler.

use super::App;
use super::handlers as h;
use crate::problem::EdgeError;
use crate::server::{Request, Response};

type HandlerFn = fn(&App, &Request<'_>) -> Result<Response, EdgeError>;

/// A route: its path (the template, used as the metrics label), and handlers per method.
pub struct Route {
    /// Path template.
    pub path: &'static str,
    /// Methods and their handlers.
    pub methods: &'static [(&'static str, HandlerFn)],
    /// The `Allow` header value.
    pub allow: &'static str,
}

/// Every API route.
pub static ROUTES: &[Route] = &[
    Route {
        path: "/v1/auth/register",
        methods: &[("POST", h::register)],
        allow: "POST",
    },
    Route {
        path: "/v1/auth/login",
        methods: &[("POST", h::login)],
        allow: "POST",
    },
    Route {
        path: "/v1/auth/login/mfa",
        methods: &[("POST", h::login_mfa)],
        allow: "POST",
    },
    Route {
        path: "/v1/auth/refresh",
        methods: &[("POST", h::refresh)],
        allow: "POST",
    },
    Route {
        path: "/v1/auth/logout",
        methods: &[("POST", h::logout)],
        allow: "POST",
    },
    Route {
        path: "/v1/auth/logout-all",
        methods: &[("POST", h::logout_all)],
        allow: "POST",
    },
    Route {
        path: "/v1/users/me",
        methods: &[("GET", h::me), ("PATCH", h::update_me)],
        allow: "GET, HEAD, PATCH",
    },
    Route {
        path: "/v1/sessions",
        methods: &[("GET", h::list_sessions)],
        allow: "GET, HEAD",
    },
    Route {
        path: "/v1/sessions/{id}",
        methods: &[("DELETE", h::delete_session)],
        allow: "DELETE",
    },
    Route {
        path: "/v1/email/verification",
        methods: &[("POST", h::request_email_verification)],
        allow: "POST",
    },
    Route {
        path: "/v1/email/verification/confirm",
        methods: &[("POST", h::confirm_email_verification)],
        allow: "POST",
    },
    Route {
        path: "/v1/email/change",
        methods: &[("POST", h::request_email_change)],
        allow: "POST",
    },
    Route {
        path: "/v1/email/change/confirm",
        methods: &[("POST", h::confirm_email_change)],
        allow: "POST",
    },
    Route {
        path: "/v1/password/forgot",
        methods: &[("POST", h::forgot_password)],
        allow: "POST",
    },
    Route {
        path: "/v1/password/reset",
        methods: &[("POST", h::reset_password)],
        allow: "POST",
    },
    Route {
        path: "/v1/password/change",
        methods: &[("POST", h::change_password)],
        allow: "POST",
    },
    Route {
        path: "/v1/mfa/totp/enroll",
        methods: &[("POST", h::enroll_totp)],
        allow: "POST",
    },
    Route {
        path: "/v1/mfa/totp/confirm",
        methods: &[("POST", h::confirm_totp)],
        allow: "POST",
    },
    Route {
        path: "/v1/mfa/totp/disable",
        methods: &[("POST", h::disable_totp)],
        allow: "POST",
    },
    Route {
        path: "/v1/oauth/introspect",
        methods: &[("POST", h::introspect)],
        allow: "POST",
    },
    Route {
        path: "/v1/oauth/revoke",
        methods: &[("POST", h::revoke)],
        allow: "POST",
    },
    Route {
        path: "/.well-known/jwks.json",
        methods: &[("GET", h::jwks)],
        allow: "GET, HEAD",
    },
    Route {
        path: "/.well-known/openid-configuration",
        methods: &[("GET", h::discovery)],
        allow: "GET, HEAD",
    },
    Route {
        path: "/healthz",
        methods: &[("GET", h::healthz)],
        allow: "GET, HEAD",
    },
    Route {
        path: "/readyz",
        methods: &[("GET", h::readyz)],
        allow: "GET, HEAD",
    },
    Route {
        path: "/openapi.json",
        methods: &[("GET", h::openapi)],
        allow: "GET, HEAD",
    },
];

fn matches(template: &str, path: &str) -> bool {
    match template.strip_suffix("{id}") {
        Some(prefix) => path
            .strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty() && !rest.contains('/')),
        None => template == path,
    }
}

/// Which route and method served a request (indices into [`ROUTES`]), for metrics.
#[derive(Debug, Clone, Copy)]
pub(super) struct Matched {
    /// Index into `ROUTES`; `None` when no path matched.
    pub route: Option<usize>,
    /// Index into the route's methods; `None` when the method is not allowed.
    pub method: Option<usize>,
}

/// Finds and runs the handler.
pub(super) fn dispatch(app: &App, req: &Request<'_>) -> (Matched, Result<Response, EdgeError>) {
    let Some((ri, route)) = ROUTES
        .iter()
        .enumerate()
        .find(|(_, r)| matches(r.path, req.path))
    else {
        return (
            Matched {
                route: None,
                method: None,
            },
            Err(EdgeError::NotFound),
        );
    };
    match route
        .methods
        .iter()
        .enumerate()
        .find(|(_, (m, _))| *m == req.method)
    {
        Some((mi, (_, handler))) => (
            Matched {
                route: Some(ri),
                method: Some(mi),
            },
            handler(app, req),
        ),
        None => (
            Matched {
                route: Some(ri),
                method: None,
            },
            Err(EdgeError::MethodNotAllowed(route.allow)),
        ),
    }
}

/// The `{id}` segment of a templated path.
pub(crate) fn path_param<'p>(template: &str, path: &'p str) -> &'p str {
    template
        .strip_suffix("{id}")
        .and_then(|prefix| path.strip_prefix(prefix))
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_one_segment() {
        assert!(matches("/v1/sessions/{id}", "/v1/sessions/abc"));
        assert!(!matches("/v1/sessions/{id}", "/v1/sessions/"));
        assert!(!matches("/v1/sessions/{id}", "/v1/sessions/a/b"));
        assert!(matches("/healthz", "/healthz"));
        assert!(!matches("/healthz", "/healthz/"));
        assert_eq!(path_param("/v1/sessions/{id}", "/v1/sessions/xyz"), "xyz");
    }
}
