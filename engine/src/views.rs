//! Conversions from stored records to the views clients see.

use portcullis_storage::{SessionId, SessionRecord, UserRecord};

use crate::model::{SessionView, UserView};

/// RFC 3339 (UTC, second precision) for a Unix-ms time.
pub(crate) fn rfc3339(ms: u64) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

pub(crate) fn user_view(u: &UserRecord) -> UserView {
    UserView {
        id: u.id.to_uuid_string(),
        email: u.email.clone(),
        name: u.name.clone(),
        picture_url: u.picture_url.clone(),
        email_verified: u.email_verified,
        mfa_enabled: u.mfa_enabled,
        created_at: rfc3339(u.created_at_ms),
    }
}

pub(crate) fn session_view(s: &SessionRecord, current: SessionId) -> SessionView {
    SessionView {
        id: s.id.to_b64(),
        created_at: rfc3339(s.created_at_ms),
        last_used_at: rfc3339(s.last_used_at_ms),
        ip: s.ip.clone(),
        user_agent: s.user_agent.clone(),
        current: s.id == current,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_is_utc_seconds() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_800_000_000_999), "2027-01-15T08:00:00Z");
    }
}
