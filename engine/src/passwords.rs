//! Password strength at the moments a password is chosen (register, reset,
//! change), following NIST SP 800-63B 3.1.1.2: a new password is refused
//! when it is among the most common passwords or contains context-specific
//! words (the email address's local part, the service's name). Offline: the
//! list ships in the binary (`engine/data/common-passwords.txt`, see the
//! README there). No composition rules, no expiry: NIST advises against
//! both.

use crate::domain::Password;
use crate::error::AuthError;

/// The 100,000 most common passwords (those of 8 bytes or more), lowercased
/// and sorted.
const COMMON: &str = include_str!("../data/common-passwords.txt");

/// Shortest email local part treated as a word the password must not contain.
const MIN_CONTEXT_WORD: usize = 3;

/// Words of this service that make a password guessable.
const SERVICE_WORDS: &[&str] = &["portcullis"];

/// The strength check; built once, at engine start.
pub struct PasswordPolicy {
    common: Vec<&'static str>,
}

impl std::fmt::Debug for PasswordPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordPolicy")
            .field("common", &self.common.len())
            .finish()
    }
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy::new()
    }
}

/// Why a password is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weakness {
    /// It is one of the most common passwords.
    Common,
    /// It contains the email address's local part or the service's name.
    ContextWord,
}

impl Weakness {
    /// The reason shown to the user.
    pub fn reason(self) -> &'static str {
        match self {
            Weakness::Common => {
                "is one of the most commonly used passwords; choose a longer or less common one"
            }
            Weakness::ContextWord => {
                "contains the name of your email address or of this service; choose another"
            }
        }
    }
}

impl PasswordPolicy {
    /// Loads the list (about 40,000 entries; sorted in the file, checked here).
    pub fn new() -> PasswordPolicy {
        let mut common: Vec<&'static str> = COMMON.lines().filter(|l| !l.is_empty()).collect();
        if !common.is_sorted() {
            common.sort_unstable();
        }
        PasswordPolicy { common }
    }

    /// Why `password` may not be chosen by the owner of `email`, if so.
    pub fn weakness(&self, password: &str, email: &str) -> Option<Weakness> {
        let lower = password.to_lowercase();
        if self.common.binary_search(&lower.as_str()).is_ok() {
            return Some(Weakness::Common);
        }
        let local = email
            .rsplit_once('@')
            .map_or(email, |(l, _)| l)
            .to_lowercase();
        let context = (local.len() >= MIN_CONTEXT_WORD)
            .then_some(local.as_str())
            .into_iter()
            .chain(SERVICE_WORDS.iter().copied());
        for word in context {
            if lower.contains(word) {
                return Some(Weakness::ContextWord);
            }
        }
        None
    }

    /// Refuses a weak new password with 400 `weak_password`.
    pub(crate) fn check(
        &self,
        field: &'static str,
        password: &Password,
        email: &str,
    ) -> Result<(), AuthError> {
        match self.weakness(password.expose(), email) {
            None => Ok(()),
            Some(w) => Err(AuthError::WeakPassword {
                field,
                reason: w.reason(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_passwords_are_refused_whatever_their_case() {
        let p = PasswordPolicy::new();
        assert!(p.common.len() > 30_000, "{}", p.common.len());
        for common in [
            "password",
            "password1",
            "Password1",
            "12345678",
            "iloveyou",
            "QWERTYUIOP",
        ] {
            assert_eq!(
                p.weakness(common, "x@example.com"),
                Some(Weakness::Common),
                "{common}"
            );
        }
        assert_eq!(p.weakness("correct horse battery", "x@example.com"), None);
        assert_eq!(p.weakness("tr0ub4dor&3-staple", "x@example.com"), None);
    }

    #[test]
    fn the_local_part_and_the_service_name_are_refused() {
        let p = PasswordPolicy::new();
        assert_eq!(
            p.weakness("xx-Ada.Lovelace-99", "ada.lovelace@example.com"),
            Some(Weakness::ContextWord)
        );
        assert_eq!(
            p.weakness("my portcullis pass", "x@example.com"),
            Some(Weakness::ContextWord)
        );
        // A one- or two-letter local part is no word.
        assert_eq!(p.weakness("a very long passphrase", "al@example.com"), None);
    }
}
