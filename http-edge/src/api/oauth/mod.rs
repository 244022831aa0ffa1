//! RFC 7662 introspection and RFC 7009 revocation: `/v1/oauth/*`. Both
//! read the same body, JSON or form-encoded.

pub mod introspect;
pub mod revoke;

use portcullis_engine::TokenHint;
use portcullis_engine::domain::FieldError;
use serde::Deserialize;
use utoipa::ToSchema;
use zeroize::Zeroizing;

use crate::api::support::validation;
use crate::json::{self as body, Field, optional, required};
use crate::problem::EdgeError;
use crate::server::Request;

/// RFC 7662 / RFC 7009 request (JSON form; `application/x-www-form-urlencoded` is accepted too).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The token.
    #[schema(value_type = String)]
    pub token: Zeroizing<String>,
    /// `access_token` or `refresh_token`.
    #[serde(default)]
    pub token_type_hint: Option<String>,
}

impl TokenRequest {
    /// The body's fields, as its handler reads them.
    pub const FIELDS: &'static [Field] = &[required("token"), optional("token_type_hint")];
}

/// Reads `token` and `token_type_hint` from a JSON or form body.
fn token_request(req: &Request<'_>) -> Result<(Zeroizing<String>, Option<TokenHint>), EdgeError> {
    let (token, hint) =
        if body::media_type(req).as_deref() == Some("application/x-www-form-urlencoded") {
            let mut token = None;
            let mut hint = None;
            for (k, v) in form_urlencoded::parse(req.body) {
                // RFC 6749 3.1: a parameter must not be included more than once
                // (a proxy and the server must never read different values).
                let twice = |field: &'static str| {
                    validation(vec![FieldError {
                        field,
                        message: "is given more than once".into(),
                    }])
                };
                match &*k {
                    "token" if token.is_some() => return Err(twice("token")),
                    "token_type_hint" if hint.is_some() => return Err(twice("token_type_hint")),
                    "token" => token = Some(Zeroizing::new(v.into_owned())),
                    "token_type_hint" => hint = Some(v.into_owned()),
                    _ => {}
                }
            }
            let token = token.ok_or_else(|| {
                validation(vec![FieldError {
                    field: "token",
                    message: "is required".into(),
                }])
            })?;
            (token, hint)
        } else {
            let b: TokenRequest = body::parse(req, TokenRequest::FIELDS)?;
            (b.token, b.token_type_hint)
        };
    let hint = match hint.as_deref() {
        Some("access_token") => Some(TokenHint::AccessToken),
        Some("refresh_token") => Some(TokenHint::RefreshToken),
        // RFC 7009 §2.1: an unknown hint is ignored.
        _ => None,
    };
    Ok((token, hint))
}
