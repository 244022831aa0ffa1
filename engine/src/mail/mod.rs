//! Outgoing mail: the letters flows queue in the outbox, and the transports
//! that deliver them (SMTP through lettre, or `.eml` files).
//!
//! A letter is rendered when its flow runs (so its link carries the one-time
//! token) and stored in the outbox sealed with the data key: the token is a
//! secret until it is delivered. The mailer opens it, builds an RFC 5322
//! message (plain text + HTML alternative) and hands it to the transport.

pub mod letters;
pub mod transport;

use std::sync::Arc;

use lettre::message::Mailbox;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::datakey::{DataKeyError, DataKeys};

/// How queued letters go out: the transport, the sender, and the data keys
/// that seal letters in the outbox (and the account's other secrets).
pub struct Mailer {
    pub(crate) transport: transport::Transport,
    pub(crate) from: Mailbox,
    pub(crate) keys: Arc<DataKeys>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("transport", &self.transport)
            .field("from", &self.from.to_string())
            .finish()
    }
}

/// One message to send: the recipient and the rendered content.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Letter {
    /// Normalized recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body (same content).
    pub html: String,
}

impl std::fmt::Debug for Letter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Bodies carry one-time tokens: never printed.
        f.debug_struct("Letter")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl Letter {
    /// Serializes and seals the letter for outbox message `id`.
    pub fn seal(&self, keys: &DataKeys, id: &[u8; 16]) -> Result<Vec<u8>, DataKeyError> {
        let plain = Zeroizing::new(serde_json::to_vec(self).map_err(|_| DataKeyError::Corrupt)?);
        keys.seal(&plain, id)
    }

    /// Opens a letter sealed for outbox message `id`.
    pub fn open(keys: &DataKeys, id: &[u8; 16], sealed: &[u8]) -> Result<Letter, DataKeyError> {
        let plain = keys.open(sealed, id)?;
        serde_json::from_slice(&plain).map_err(|_| DataKeyError::Corrupt)
    }
}

/// Checks a `From:` setting (`Name <address>` or a bare address).
pub fn check_mailbox(v: &str) -> Result<(), String> {
    v.parse::<lettre::message::Mailbox>()
        .map(|_| ())
        .map_err(|e| format!("not a mailbox ({e}); e.g. Portcullis <no-reply@example.com>"))
}

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A letter whose call to action is a link: `intro`, the link, `outro`, in
/// both bodies.
pub fn link_letter(to: &str, subject: &str, intro: &str, link: &str, outro: &str) -> Letter {
    Letter {
        to: to.to_owned(),
        subject: subject.to_owned(),
        text: format!("{intro}\n\n{link}\n\n{outro}\n"),
        html: format!(
            "<!doctype html><html><body><p>{}</p><p><a href=\"{}\">{}</a></p><p>{}</p></body></html>",
            html_escape(intro),
            html_escape(link),
            html_escape(link),
            html_escape(outro)
        ),
    }
}

/// A letter that only informs (security notices).
pub fn notice_letter(to: &str, subject: &str, body: &str) -> Letter {
    Letter {
        to: to.to_owned(),
        subject: subject.to_owned(),
        text: format!("{body}\n"),
        html: format!(
            "<!doctype html><html><body><p>{}</p></body></html>",
            html_escape(body)
        ),
    }
}

#[cfg(test)]
mod tests;
