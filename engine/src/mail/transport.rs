//! Mail transports: SMTP (lettre, rustls: STARTTLS or implicit TLS, optional
//! authentication) and `file`, the embedded default, which writes each
//! message as an RFC 5322 `.eml` file named after its outbox id.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use zeroize::Zeroizing;

use super::Letter;

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No TLS: only for a relay on the same host or network.
    None,
}

/// Where and how to deliver over SMTP.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    /// Server host name (also the name its certificate must carry).
    pub host: String,
    /// Port; the security's usual one when `None` (587, 465, 25).
    pub port: Option<u16>,
    pub security: SmtpSecurity,
    /// AUTH user name and password.
    pub username: Option<String>,
    pub password: Option<Zeroizing<String>>,
    /// Extra CA certificate (PEM) to trust, for a private relay.
    pub ca_file: Option<PathBuf>,
    /// Longest wait for the server at each step.
    pub timeout: Duration,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// Which transport delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportConfig {
    /// `.eml` files in this directory.
    File(PathBuf),
    /// An SMTP server.
    Smtp(SmtpSettings),
}

/// Why a delivery failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SendError {
    /// Worth retrying later (connection, timeout, 4xx).
    #[error("transient: {0}")]
    Transient(String),
    /// Will not succeed (5xx, bad address): dropped.
    #[error("permanent: {0}")]
    Permanent(String),
}

/// A delivery may take this many steps' timeouts in all (connect, EHLO,
/// STARTTLS, AUTH, MAIL, RCPT, DATA and the body).
const DIALOGUE_STEPS: u32 = 8;

/// A ready transport.
pub enum Transport {
    File(PathBuf),
    /// The client, and the longest a whole delivery may take (a relay that
    /// stops answering mid-dialogue must not hold the mailer).
    Smtp(Box<AsyncSmtpTransport<Tokio1Executor>>, Duration),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::File(dir) => f.debug_tuple("File").field(dir).finish(),
            Transport::Smtp(..) => f.write_str("Smtp"),
        }
    }
}

impl Transport {
    /// Builds the transport; fails on an unreadable CA file.
    pub fn new(cfg: &TransportConfig) -> Result<Transport, String> {
        match cfg {
            TransportConfig::File(dir) => {
                // The messages carry live tokens: owner-only, like the rest
                // of the data directory.
                portcullis_storage::private_fs::ensure_dir(dir)
                    .map_err(|e| format!("cannot create mail directory {}: {e}", dir.display()))?;
                Ok(Transport::File(dir.clone()))
            }
            TransportConfig::Smtp(s) => {
                let tls = || -> Result<TlsParameters, String> {
                    let mut b = TlsParameters::builder(s.host.clone());
                    if let Some(ca) = &s.ca_file {
                        let pem = std::fs::read(ca).map_err(|e| {
                            format!("cannot read SMTP CA file {}: {e}", ca.display())
                        })?;
                        let cert = Certificate::from_pem(&pem)
                            .map_err(|e| format!("SMTP CA file {}: {e}", ca.display()))?;
                        b = b.add_root_certificate(cert);
                    }
                    b.build_rustls()
                        .map_err(|e| format!("SMTP TLS settings: {e}"))
                };
                let (tls, port) = match s.security {
                    SmtpSecurity::StartTls => (Tls::Required(tls()?), 587),
                    SmtpSecurity::Tls => (Tls::Wrapper(tls()?), 465),
                    SmtpSecurity::None => (Tls::None, 25),
                };
                let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.clone())
                    .port(s.port.unwrap_or(port))
                    .tls(tls)
                    .timeout(Some(s.timeout));
                if let (Some(user), Some(password)) = (&s.username, &s.password) {
                    b = b.credentials(Credentials::new(user.clone(), password.to_string()));
                }
                Ok(Transport::Smtp(
                    Box::new(b.build()),
                    s.timeout.saturating_mul(DIALOGUE_STEPS),
                ))
            }
        }
    }

    /// Delivers `letter` from `from` as outbox message `id`.
    pub async fn send(
        &self,
        from: &Mailbox,
        id: &[u8; 16],
        letter: &Letter,
    ) -> Result<(), SendError> {
        let message = build(from, id, letter)?;
        match self {
            Transport::File(dir) => {
                let dir = dir.clone();
                let name = file_name(id);
                let bytes = message.formatted();
                tokio::task::spawn_blocking(move || write_eml(&dir, &name, &bytes))
                    .await
                    .map_err(|e| SendError::Transient(format!("file transport task: {e}")))?
            }
            Transport::Smtp(smtp, deadline) => {
                match tokio::time::timeout(*deadline, smtp.send(message)).await {
                    Err(_) => Err(SendError::Transient(format!(
                        "the SMTP dialogue took longer than {deadline:?}"
                    ))),
                    Ok(r) => r.map(|_| ()).map_err(|e| {
                        if e.is_permanent() {
                            SendError::Permanent(e.to_string())
                        } else {
                            SendError::Transient(e.to_string())
                        }
                    }),
                }
            }
        }
    }
}

/// The hex of an outbox id: the `.eml` file name and the Message-ID's left part.
pub fn hex_id(id: &[u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// The file a message is written to: the same for every attempt, so a
/// retried delivery replaces the file instead of adding a second one.
pub fn file_name(id: &[u8; 16]) -> String {
    format!("{}.eml", hex_id(id))
}

/// The RFC 5322 message: multipart/alternative (text, HTML), a Message-ID
/// derived from the outbox id (so receivers can drop a duplicate delivery).
pub fn build(from: &Mailbox, id: &[u8; 16], letter: &Letter) -> Result<Message, SendError> {
    let to: Mailbox = letter
        .to
        .parse()
        .map_err(|e| SendError::Permanent(format!("bad recipient address: {e}")))?;
    let domain = from.email.domain().to_owned();
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(letter.subject.clone())
        .message_id(Some(format!("<{}@{domain}>", hex_id(id))))
        .date_now()
        .multipart(MultiPart::alternative_plain_html(
            letter.text.clone(),
            letter.html.clone(),
        ))
        .map_err(|e| SendError::Permanent(format!("cannot build the message: {e}")))
}

/// Writes `bytes` to `dir/name` (0600: it carries a live token) through a
/// temporary file and a rename, so a reader never sees half a message and a
/// retry replaces it whole.
fn write_eml(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), SendError> {
    use std::io::Write as _;
    let tmp = dir.join(format!(".{name}.tmp"));
    let io = |e: std::io::Error| {
        SendError::Transient(format!("writing {}: {e}", dir.join(name).display()))
    };
    let mut f = portcullis_storage::private_fs::create_file(&tmp).map_err(io)?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(io)?;
    std::fs::rename(&tmp, dir.join(name)).map_err(io)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
