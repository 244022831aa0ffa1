//! Reading JSON request bodies strictly: a JSON object of exactly the
//! expected fields, each of the expected type. Problems come back as one
//! `invalid_request` with a message per field.

use portcullis_engine::domain::FieldError;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::problem::EdgeError;
use crate::server::Request;

/// The JSON type a field must have.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// A string.
    Str,
    /// A string or null.
    NullableStr,
    /// A JSON object (read further by whoever takes it).
    Object,
}

/// One expected field.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Its name.
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
    /// Whether it must be present.
    pub required: bool,
}

/// A required string field.
pub const fn required(name: &'static str) -> Field {
    Field {
        name,
        kind: Kind::Str,
        required: true,
    }
}

/// An optional string field.
pub const fn optional(name: &'static str) -> Field {
    Field {
        name,
        kind: Kind::Str,
        required: false,
    }
}

/// A required object field.
pub const fn required_object(name: &'static str) -> Field {
    Field {
        name,
        kind: Kind::Object,
        required: true,
    }
}

/// An optional object field.
pub const fn optional_object(name: &'static str) -> Field {
    Field {
        name,
        kind: Kind::Object,
        required: false,
    }
}

/// An optional string-or-null field.
pub const fn nullable(name: &'static str) -> Field {
    Field {
        name,
        kind: Kind::NullableStr,
        required: false,
    }
}

fn invalid(detail: impl Into<String>) -> EdgeError {
    EdgeError::InvalidBody {
        detail: detail.into(),
        errors: Vec::new(),
    }
}

/// Whether the request declares a JSON body (`application/json`, any parameters, or `+json`).
pub fn is_json(req: &Request<'_>) -> bool {
    media_type(req).is_some_and(|m| {
        m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
    })
}

/// The request's media type, lowercased, without parameters.
pub fn media_type(req: &Request<'_>) -> Option<String> {
    let ct = std::str::from_utf8(req.header("content-type")?).ok()?;
    Some(
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

/// Parses the body as a JSON object with exactly `fields`.
pub fn parse<T: DeserializeOwned>(req: &Request<'_>, fields: &[Field]) -> Result<T, EdgeError> {
    if req.body.is_empty() {
        return Err(invalid("the request body is empty; send a JSON object"));
    }
    if !is_json(req) {
        return Err(EdgeError::UnsupportedMediaType("application/json"));
    }
    parse_bytes(req.body, fields)
}

/// Parses `body` as a JSON object with exactly `fields`.
pub fn parse_bytes<T: DeserializeOwned>(body: &[u8], fields: &[Field]) -> Result<T, EdgeError> {
    if std::str::from_utf8(body).is_err() {
        return Err(invalid("the request body is not valid UTF-8"));
    }
    let value = match serde_json::from_slice::<Unique>(body) {
        Ok(Unique(v)) => v,
        Err(e)
            if e.classify() == serde_json::error::Category::Data
                && e.to_string().starts_with(DUPLICATE_KEY) =>
        {
            return Err(invalid(format!("the request body has a {e}")));
        }
        Err(e) => return Err(invalid(format!("the request body is not valid JSON: {e}"))),
    };
    let Value::Object(map) = value else {
        return Err(invalid("the request body must be a JSON object"));
    };
    let errors = check_shape(&map, fields);
    if !errors.is_empty() {
        return Err(EdgeError::InvalidBody {
            detail: "one or more fields are invalid".into(),
            errors,
        });
    }
    serde_json::from_value(Value::Object(map)).map_err(|e| {
        invalid(format!(
            "the request body does not match the expected shape: {e}"
        ))
    })
}

/// A JSON value whose objects, at every depth, have no repeated key. A
/// repeated key is refused rather than resolved: a proxy or WAF that reads
/// the first occurrence and this server reading the last would act on
/// different requests. Parsing recurses through `serde_json`'s deserializer,
/// so its recursion limit still applies.
struct Unique(Value);

/// How the error of a repeated key starts.
const DUPLICATE_KEY: &str = "duplicate key";

impl<'de> serde::Deserialize<'de> for Unique {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Unique, D::Error> {
        d.deserialize_any(UniqueVisitor).map(Unique)
    }
}

struct UniqueVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        serde::Deserialize::deserialize(d).map(|Unique(v)| v)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Unique(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!(
                    "{DUPLICATE_KEY} '{}'",
                    truncate(&key)
                )));
            }
            let Unique(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

fn check_shape(map: &Map<String, Value>, fields: &[Field]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (name, _) in map.iter() {
        if !fields.iter().any(|f| f.name == name) {
            // `field` is static: unknown names go into the message under `body`.
            errors.push(FieldError {
                field: "body",
                message: format!("unknown field '{}'", truncate(name)),
            });
        }
    }
    for f in fields {
        match (map.get(f.name), f.kind) {
            (None, _) if f.required => errors.push(FieldError {
                field: f.name,
                message: "is required".into(),
            }),
            (None, _)
            | (Some(Value::String(_)), Kind::Str | Kind::NullableStr)
            | (Some(Value::Null), Kind::NullableStr)
            | (Some(Value::Object(_)), Kind::Object) => {}
            (Some(Value::Null), Kind::Str | Kind::Object) if !f.required => {}
            (Some(other), kind) => errors.push(FieldError {
                field: f.name,
                message: format!(
                    "must be {}, not {}",
                    match kind {
                        Kind::Str => "a string",
                        Kind::NullableStr => "a string or null",
                        Kind::Object => "an object",
                    },
                    json_type(other)
                ),
            }),
        }
    }
    errors
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Login {
        email: String,
        password: String,
        name: Option<String>,
    }

    const FIELDS: &[Field] = &[required("email"), required("password"), optional("name")];

    fn errs(body: &[u8]) -> (String, Vec<(&'static str, String)>) {
        match parse_bytes::<Login>(body, FIELDS) {
            Err(EdgeError::InvalidBody { detail, errors }) => (
                detail,
                errors.into_iter().map(|e| (e.field, e.message)).collect(),
            ),
            other => panic!("expected invalid body, got {other:?}"),
        }
    }

    #[test]
    fn accepts_the_exact_shape() {
        let l: Login = parse_bytes(br#"{"email":"a@b.co","password":"x"}"#, FIELDS).unwrap();
        assert_eq!(l.email, "a@b.co");
        assert!(
            parse_bytes::<Login>(br#"{"email":"a@b.co","password":"x","name":null}"#, FIELDS)
                .is_ok()
        );
    }

    #[test]
    fn explains_each_field_problem() {
        let (_, e) = errs(br#"{"email":5,"extra":1}"#);
        assert!(
            e.contains(&("email", "must be a string, not a number".into())),
            "{e:?}"
        );
        assert!(e.contains(&("password", "is required".into())), "{e:?}");
        assert!(
            e.contains(&("body", "unknown field 'extra'".into())),
            "{e:?}"
        );
    }

    #[test]
    fn malformed_bodies() {
        assert!(errs(b"{\"email\":").0.contains("not valid JSON"));
        assert!(errs(b"[1,2]").0.contains("JSON object"));
        assert!(errs(b"\"str\"").0.contains("JSON object"));
        assert!(errs(b"{\"email\":\"\xff\xfe\"}").0.contains("UTF-8"));
        assert!(errs(b"{} trailing").0.contains("not valid JSON"));
        assert!(
            errs(br#"{"email":1e400}"#)
                .0
                .starts_with("the request body is not valid JSON: number out of range")
        );
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        let (detail, e) = errs(br#"{"email":"a@x.co","email":"b@x.co","password":"x"}"#);
        assert!(detail.contains("duplicate key 'email'"), "{detail}");
        assert!(e.is_empty(), "{e:?}");
        let (detail, _) =
            errs(br#"{"email":"a@x.co","password":"x","name":{"a":[{"k":1,"k":2}]}}"#);
        assert!(detail.contains("duplicate key 'k'"), "{detail}");
        // Escapes that spell the same key are the same key.
        let (detail, _) = errs(br#"{"email":"a@x.co","\u0065mail":"b@x.co","password":"x"}"#);
        assert!(detail.contains("duplicate key 'email'"), "{detail}");
        // Same names in different objects are fine (the shape check speaks).
        let (detail, _) = errs(br#"{"email":{"email":1},"password":{"email":2}}"#);
        assert_eq!(detail, "one or more fields are invalid");
    }

    #[test]
    fn values_survive_the_strict_parse() {
        let v: Value = serde_json::from_slice::<Unique>(
            br#"{"a":[1,-2,3.5,true,null,"s",{}],"b":18446744073709551615}"#,
        )
        .map(|Unique(v)| v)
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            v,
            serde_json::from_slice::<Value>(
                br#"{"a":[1,-2,3.5,true,null,"s",{}],"b":18446744073709551615}"#
            )
            .unwrap_or(Value::Null)
        );
    }

    #[test]
    fn deep_nesting_hits_the_recursion_limit_not_the_stack() {
        let mut deep = Vec::new();
        deep.extend(std::iter::repeat_n(b'[', 100_000));
        let detail = errs(&deep).0;
        assert!(detail.contains("recursion limit"), "{detail}");
        let mut objects = Vec::new();
        for _ in 0..100_000 {
            objects.extend_from_slice(br#"{"a":"#);
        }
        let detail = errs(&objects).0;
        assert!(detail.contains("recursion limit"), "{detail}");
    }
}
