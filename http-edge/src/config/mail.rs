//! The mail and account settings: transport, sender, link base, data key.

use std::path::PathBuf;

use portcullis_engine::config::{AccountConfig, Secret};
use portcullis_engine::mail::transport::{SmtpSecurity, SmtpSettings, TransportConfig};

use super::*;

/// `None` as the transport is the file transport in `<data dir>/mail`,
/// resolved by the engine against its final data directory.
pub(super) fn account(r: &Resolver<'_>) -> Result<AccountConfig, ConfigError> {
    let opt = |s: &Setting| Some(r.raw(s)).filter(|v| !v.trim().is_empty());
    let mut a = AccountConfig {
        data_key: opt(&DATA_KEY).map(Secret::new),
        public_base_url: match opt(&PUBLIC_BASE_URL) {
            Some(_) => Some(r.parse(&PUBLIC_BASE_URL, parse_issuer)?),
            None => None,
        },
        ..AccountConfig::default()
    };
    a.mail_from = r.parse(&MAIL_FROM, |v| {
        portcullis_engine::mail::check_mailbox(v).map(|()| v.to_owned())
    })?;
    a.transport = match r.raw(&MAIL_TRANSPORT).as_str() {
        "file" => opt(&MAIL_DIR).map(|d| TransportConfig::File(PathBuf::from(d))),
        "smtp" => Some({
            let host = opt(&SMTP_HOST).ok_or_else(|| {
                ConfigError(format!(
                    "--{} smtp needs --{} / {}",
                    MAIL_TRANSPORT.flag, SMTP_HOST.flag, SMTP_HOST.env
                ))
            })?;
            let port = r.parse(&SMTP_PORT, |v| {
                v.parse::<u16>()
                    .map_err(|_| "expected a port number".to_owned())
            })?;
            TransportConfig::Smtp(SmtpSettings {
                host,
                port: (port != 0).then_some(port),
                security: r.parse(&SMTP_SECURITY, |v| match v {
                    "starttls" => Ok(SmtpSecurity::StartTls),
                    "tls" => Ok(SmtpSecurity::Tls),
                    "none" => Ok(SmtpSecurity::None),
                    _ => Err("expected starttls, tls or none".to_owned()),
                })?,
                username: opt(&SMTP_USERNAME),
                password: opt(&SMTP_PASSWORD).map(zeroize::Zeroizing::new),
                ca_file: opt(&SMTP_CA_FILE).map(PathBuf::from),
                timeout: r.duration(&SMTP_TIMEOUT)?,
            })
        }),
        other => {
            return Err(ConfigError(format!(
                "invalid --{} / {}: '{other}' (expected file or smtp)",
                MAIL_TRANSPORT.flag, MAIL_TRANSPORT.env
            )));
        }
    };
    Ok(a)
}
