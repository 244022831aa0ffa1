//! Request bodies: `parse_bytes` (the strict JSON reader of the edge) into
//! every request DTO with the field list its handler passes (`T::FIELDS`),
//! then the value checks the handlers apply (`domain`).
//!
//! Checked: nothing panics; a refusal is always a 400 `InvalidBody`; a body
//! is accepted exactly when an independent check says it has the listed
//! fields, of the listed types, and no key repeated at any depth (so the
//! field list and the DTO agree); the normalizing validators are idempotent.

#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_edge::api::auth::login::LoginRequest;
use portcullis_edge::api::auth::login_mfa::LoginMfaRequest;
use portcullis_edge::api::auth::refresh::RefreshRequest;
use portcullis_edge::api::auth::register::RegisterRequest;
use portcullis_edge::api::email::change_request::EmailChangeRequest;
use portcullis_edge::api::mfa::confirm::MfaCodeRequest;
use portcullis_edge::api::mfa::disable::TotpDisableRequest;
use portcullis_edge::api::mfa::enroll::TotpEnrollRequest;
use portcullis_edge::api::oauth::TokenRequest;
use portcullis_edge::api::password::change::ChangePasswordRequest;
use portcullis_edge::api::password::forgot::ForgotPasswordRequest;
use portcullis_edge::api::password::reset::ResetPasswordRequest;
use portcullis_edge::api::users::update_me::UpdateMeRequest;
use portcullis_edge::dto::ConfirmTokenRequest;
use portcullis_edge::fuzzing::{Field, Kind, parse_bytes};
use portcullis_edge::problem::EdgeError;
use portcullis_engine::domain::{self, Email, Password};
use serde_json::Value;
use zeroize::Zeroizing;

/// Whether some object of a JSON document, at any depth, repeats a key
/// (after unescaping). `None`: not JSON.
fn repeats_a_key(body: &[u8]) -> Option<bool> {
    struct Repeats(bool);
    impl<'de> serde::Deserialize<'de> for Repeats {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Repeats, D::Error> {
            d.deserialize_any(Repeats(false))
        }
    }
    impl<'de> serde::de::Visitor<'de> for Repeats {
        type Value = Repeats;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_bool<E>(self, _: bool) -> Result<Repeats, E> {
            Ok(self)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Repeats, E> {
            Ok(self)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Repeats, E> {
            Ok(self)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Repeats, E> {
            Ok(self)
        }
        fn visit_str<E>(self, _: &str) -> Result<Repeats, E> {
            Ok(self)
        }
        fn visit_unit<E>(self) -> Result<Repeats, E> {
            Ok(self)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Repeats, A::Error> {
            let mut any = false;
            while let Some(Repeats(r)) = seq.next_element()? {
                any |= r;
            }
            Ok(Repeats(any))
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Repeats, A::Error> {
            let mut keys = std::collections::HashSet::new();
            let mut any = false;
            while let Some(k) = map.next_key::<String>()? {
                any |= !keys.insert(k);
                let Repeats(r) = map.next_value()?;
                any |= r;
            }
            Ok(Repeats(any))
        }
    }
    serde_json::from_slice::<Repeats>(body)
        .ok()
        .map(|Repeats(r)| r)
}

/// What the field check must decide, worked out independently.
fn shape_ok(body: &[u8], fields: &[Field]) -> bool {
    // A repeated key anywhere is refused (a proxy reading the first and the
    // server the last would see different requests).
    if repeats_a_key(body) != Some(false) {
        return false;
    }
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    map.keys().all(|k| fields.iter().any(|f| f.name == k))
        && fields.iter().all(|f| match (map.get(f.name), f.kind) {
            (None, _) => !f.required,
            (Some(Value::String(_)), _) => true,
            (Some(Value::Null), Kind::NullableStr) => true,
            (Some(Value::Null), Kind::Str) => !f.required,
            (Some(_), _) => false,
        })
}

fn parsed<T: serde::de::DeserializeOwned>(body: &[u8], fields: &[Field]) -> Option<T> {
    let expected = shape_ok(body, fields);
    match parse_bytes::<T>(body, fields) {
        Ok(v) => {
            assert!(expected, "accepted a body of the wrong shape");
            Some(v)
        }
        Err(EdgeError::InvalidBody { detail, errors }) => {
            assert!(
                !detail.contains("does not match the expected shape"),
                "the field list and the DTO disagree: {detail}"
            );
            assert!(
                !expected,
                "refused a body of the right shape: {detail} {errors:?}"
            );
            assert!(errors.iter().all(|e| !e.message.is_empty()));
            None
        }
        Err(other) => panic!("a body problem that is not 400 invalid_request: {other:?}"),
    }
}

fn email(raw: &str) {
    if let Ok(e) = Email::parse("email", raw) {
        let again = Email::parse("email", e.as_str()).expect("a normalized email is refused");
        assert_eq!(again, e, "email normalization is not idempotent");
        assert!(e.as_str().len() <= 254);
    }
}

fn password(raw: &str) {
    let ok = Password::parse("password", Zeroizing::new(raw.to_owned())).is_ok();
    assert_eq!(ok, (8..=1024).contains(&raw.len()));
}

fn name(raw: &str) {
    if let Ok(n) = domain::parse_name("name", raw) {
        assert_eq!(domain::parse_name("name", &n).as_deref(), Ok(n.as_str()));
        assert!(!n.is_empty() && n.chars().count() <= 200);
    }
}

fn picture(raw: &str) {
    if let Ok(u) = domain::parse_picture_url("picture_url", raw) {
        assert!(u.starts_with("https://") && u.len() <= 2048);
        assert_eq!(
            domain::parse_picture_url("picture_url", &u).as_deref(),
            Ok(u.as_str())
        );
    }
}

fuzz_target!(|body: &[u8]| {
    if let Some(b) = parsed::<RegisterRequest>(body, RegisterRequest::FIELDS) {
        email(&b.email);
        password(&b.password);
        if let Some(n) = &b.name {
            name(n);
        }
    }
    if let Some(b) = parsed::<LoginRequest>(body, LoginRequest::FIELDS) {
        email(&b.email);
        let _ = b.device_token;
    }
    if let Some(b) = parsed::<LoginMfaRequest>(body, LoginMfaRequest::FIELDS) {
        let _ = (b.mfa_token, b.code);
    }
    let _ = parsed::<TotpEnrollRequest>(body, TotpEnrollRequest::FIELDS);
    let _ = parsed::<MfaCodeRequest>(body, MfaCodeRequest::FIELDS);
    let _ = parsed::<TotpDisableRequest>(body, TotpDisableRequest::FIELDS);
    let _ = parsed::<RefreshRequest>(body, RefreshRequest::FIELDS);
    let _ = parsed::<ConfirmTokenRequest>(body, ConfirmTokenRequest::FIELDS);
    if let Some(b) = parsed::<ForgotPasswordRequest>(body, ForgotPasswordRequest::FIELDS) {
        email(&b.email);
    }
    if let Some(b) = parsed::<ResetPasswordRequest>(body, ResetPasswordRequest::FIELDS) {
        password(&b.new_password);
    }
    if let Some(b) = parsed::<ChangePasswordRequest>(body, ChangePasswordRequest::FIELDS) {
        password(&b.current_password);
        password(&b.new_password);
    }
    if let Some(b) = parsed::<EmailChangeRequest>(body, EmailChangeRequest::FIELDS) {
        email(&b.new_email);
    }
    if let Some(b) = parsed::<UpdateMeRequest>(body, UpdateMeRequest::FIELDS) {
        if let Some(Some(n)) = &b.name {
            name(n);
        }
        if let Some(Some(u)) = &b.picture_url {
            picture(u);
        }
    }
    let _ = parsed::<TokenRequest>(body, TokenRequest::FIELDS);
    // The validators on any text, not only what survives the JSON layer.
    if let Ok(s) = std::str::from_utf8(body) {
        email(s);
        password(s);
        name(s);
        picture(s);
    }
});
