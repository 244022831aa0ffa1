//! Validated domain values built by the edge from request DTOs.
//!
//! The rules live here, beside the engine, so every entry point applies the
//! same ones: emails are trimmed and lowercased; passwords are 8..=1024 bytes
//! of UTF-8, never trimmed, and zeroized when dropped.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use zeroize::Zeroizing;

/// Shortest accepted password, in bytes.
pub const PASSWORD_MIN_BYTES: usize = 8;
/// Longest accepted password, in bytes.
pub const PASSWORD_MAX_BYTES: usize = 1024;
/// Longest accepted email address (RFC 5321 path limit).
pub const EMAIL_MAX_BYTES: usize = 254;
/// Longest display name, in characters.
pub const NAME_MAX_CHARS: usize = 200;
/// Longest picture URL, in bytes.
pub const PICTURE_URL_MAX_BYTES: usize = 2048;

/// A validation failure of one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's name in the request body.
    pub field: &'static str,
    /// What is wrong, for humans.
    pub message: String,
}

impl FieldError {
    pub(crate) fn new(field: &'static str, message: impl Into<String>) -> FieldError {
        FieldError {
            field,
            message: message.into(),
        }
    }
}

/// A normalized, syntactically valid email address.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Trims, lowercases and checks an address.
    pub fn parse(field: &'static str, raw: &str) -> Result<Email, FieldError> {
        let s = raw.trim().to_lowercase();
        let bad = |m: &str| Err(FieldError::new(field, m));
        if s.is_empty() {
            return bad("must not be empty");
        }
        if s.len() > EMAIL_MAX_BYTES {
            return bad("must be at most 254 bytes");
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return bad("must be an email address like name@example.com");
        };
        if local.is_empty() || local.len() > 64 {
            return bad("the part before @ must be 1 to 64 characters");
        }
        if local.contains('@')
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
            || !local
                .chars()
                .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c))
        {
            return bad("the part before @ contains characters that are not allowed");
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2
            || labels.iter().any(|l| {
                l.is_empty()
                    || l.len() > 63
                    || l.starts_with('-')
                    || l.ends_with('-')
                    || !l.chars().all(|c| c.is_alphanumeric() || c == '-')
            })
        {
            return bad("the domain must be a name like example.com");
        }
        Ok(Email(s))
    }

    /// The normalized address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

/// A password within the length limits; zeroized on drop, never printed.
pub struct Password(Zeroizing<String>);

impl Password {
    /// Checks the length rules. Takes ownership so no unzeroized copy remains.
    pub fn parse(field: &'static str, raw: Zeroizing<String>) -> Result<Password, FieldError> {
        let n = raw.len();
        if n < PASSWORD_MIN_BYTES {
            return Err(FieldError::new(field, "must be at least 8 bytes"));
        }
        if n > PASSWORD_MAX_BYTES {
            return Err(FieldError::new(field, "must be at most 1024 bytes"));
        }
        Ok(Password(raw))
    }

    /// The secret, for the hash pool.
    pub(crate) fn into_secret(self) -> Zeroizing<String> {
        self.0
    }

    /// The secret, borrowed (strength checks).
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// The address a per-client rate limit counts: IPv4 as is (IPv4-mapped IPv6
/// included), IPv6 by its /64, which one subscriber usually owns whole.
pub fn rate_limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// Checks and normalizes a display name (trimmed, 1..=200 characters, no control characters).
pub fn parse_name(field: &'static str, raw: &str) -> Result<String, FieldError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(FieldError::new(
            field,
            "must not be empty (use null to clear it)",
        ));
    }
    if s.chars().count() > NAME_MAX_CHARS {
        return Err(FieldError::new(field, "must be at most 200 characters"));
    }
    if s.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(s.to_owned())
}

/// Checks a picture URL: an absolute `https://` URL without spaces, at most 2048 bytes.
pub fn parse_picture_url(field: &'static str, raw: &str) -> Result<String, FieldError> {
    let s = raw.trim();
    if s.len() > PICTURE_URL_MAX_BYTES {
        return Err(FieldError::new(field, "must be at most 2048 bytes"));
    }
    let Some(rest) = s.strip_prefix("https://") else {
        return Err(FieldError::new(field, "must be an https:// URL"));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(FieldError::new(
            field,
            "must be an absolute https:// URL with a host",
        ));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized() {
        let e = Email::parse("email", "  Ada.Lovelace+x@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "ada.lovelace+x@example.com");
    }

    #[test]
    fn bad_emails_are_refused_with_the_field_name() {
        let long_local = format!("{}@example.com", "a".repeat(65));
        let absurd = format!("{}@example.com", "a".repeat(300));
        for bad in [
            "",
            "   ",
            "no-at-sign",
            "@example.com",
            "ada@",
            "ada@localhost",
            "ada@exa mple.com",
            "ada@-example.com",
            "ada@example..com",
            ".ada@example.com",
            "a..da@example.com",
            "ada lovelace@example.com",
            "ada@@example.com",
            "ada\u{0}@example.com",
            long_local.as_str(),
            absurd.as_str(),
        ] {
            let err = Email::parse("email", bad).unwrap_err();
            assert_eq!(err.field, "email", "{bad:?}");
        }
    }

    #[test]
    fn password_length_limits_in_bytes_and_no_trimming() {
        let p = |s: &str| Password::parse("password", Zeroizing::new(s.to_owned()));
        assert!(p("1234567").is_err());
        assert!(p("12345678").is_ok());
        assert!(p(&"x".repeat(1024)).is_ok());
        assert!(p(&"x".repeat(1025)).is_err());
        assert!(p(&"x".repeat(2000)).is_err());
        // Multi-byte characters count in bytes: 4 × 2 bytes = 8 bytes.
        assert!(p("éééé").is_ok());
        let spaced = p("  pass  ").unwrap();
        assert_eq!(spaced.into_secret().as_str(), "  pass  ");
        assert_eq!(
            format!("{:?}", p("supersecret").unwrap()),
            "Password(<redacted>)"
        );
    }

    #[test]
    fn names_and_urls() {
        assert_eq!(parse_name("name", "  Ada  ").unwrap(), "Ada");
        assert!(parse_name("name", "").is_err());
        assert!(parse_name("name", &"x".repeat(201)).is_err());
        assert!(parse_name("name", "a\nb").is_err());
        assert!(parse_picture_url("picture_url", "https://cdn.example.com/a.png").is_ok());
        assert!(parse_picture_url("picture_url", "http://cdn.example.com/a.png").is_err());
        assert!(parse_picture_url("picture_url", "https:///a.png").is_err());
        assert!(parse_picture_url("picture_url", "https://x.com/a b.png").is_err());
    }
}
