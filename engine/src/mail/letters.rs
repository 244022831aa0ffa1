//! Every letter Portcullis sends, and its words, in one place: the links
//! of the account flows and the security notices.

use std::time::Duration;

use super::{Letter, link_letter, notice_letter};

/// The closing line of a link that works once for `hours`.
fn once_for_hours(ttl: Duration) -> String {
    format!(
        "The link works once, for {} hours. If you did not ask for it, ignore this message.",
        ttl.as_secs() / 3600
    )
}

/// The link that verifies `to`.
pub fn verify_email(to: &str, link: &str, ttl: Duration) -> Letter {
    link_letter(
        to,
        "Confirm your email address",
        "Confirm your email address by opening this link:",
        link,
        &once_for_hours(ttl),
    )
}

/// The link that confirms `to` as an account's new address.
pub fn email_change(to: &str, link: &str, ttl: Duration) -> Letter {
    link_letter(
        to,
        "Confirm your new email address",
        "Confirm this address as the new sign-in address of your account by opening this link:",
        link,
        &once_for_hours(ttl),
    )
}

/// The password reset link.
pub fn password_reset(to: &str, link: &str, ttl: Duration) -> Letter {
    link_letter(
        to,
        "Reset your password",
        "Someone asked to reset the password of your account. Choose a new one here:",
        link,
        &format!(
            "The link works once, for {} minutes, and signs you out everywhere. \
             If you did not ask for it, ignore this message: your password stays as it is.",
            ttl.as_secs() / 60
        ),
    )
}

/// Notice: the password was reset through a mailed link.
pub fn password_was_reset(to: &str) -> Letter {
    notice_letter(
        to,
        "Your password was changed",
        "The password of your account was just reset, and every session was signed out. \
         If this was not you, reset it again now and check your email account's security.",
    )
}

/// Notice: the password was changed by a signed-in client.
pub fn password_was_changed(to: &str) -> Letter {
    notice_letter(
        to,
        "Your password was changed",
        "The password of your account was just changed, and your other sessions were \
         signed out. If this was not you, reset your password now.",
    )
}

/// Notice to the old address: the sign-in address is now `new_email`.
pub fn email_was_changed(to: &str, new_email: &str) -> Letter {
    notice_letter(
        to,
        "Your sign-in address was changed",
        &format!(
            "The sign-in address of your account was changed to {new_email}, and every session \
             was signed out. If this was not you, reset your password and contact support."
        ),
    )
}

/// Notice: two-step verification was turned on.
pub fn mfa_turned_on(to: &str) -> Letter {
    notice_letter(
        to,
        "Two-step verification was turned on",
        "Two-step verification (an authenticator app) was just turned on for your account. \
         If this was not you, reset your password now and contact support.",
    )
}

/// Notice: two-step verification was turned off.
pub fn mfa_turned_off(to: &str) -> Letter {
    notice_letter(
        to,
        "Two-step verification was turned off",
        "Two-step verification was just turned off for your account: signing in now needs \
         only the password. If this was not you, reset your password now and contact support.",
    )
}

/// Notice: a provider account was linked (a new way to sign in).
pub fn identity_linked(to: &str, provider: &str) -> Letter {
    notice_letter(
        to,
        "A new way to sign in was added",
        &format!(
            "Your {provider} account can now sign in to your account. If this was not you, \
             remove it under your account's sign-in methods, reset your password, and contact support."
        ),
    )
}

/// Notice: a provider account was unlinked.
pub fn identity_unlinked(to: &str, provider: &str) -> Letter {
    notice_letter(
        to,
        "A way to sign in was removed",
        &format!(
            "Your {provider} account can no longer sign in to your account. If this was not you, \
             reset your password now and contact support."
        ),
    )
}

/// Notice: a passkey was registered (a new way to sign in).
pub fn passkey_added(to: &str, name: &str) -> Letter {
    notice_letter(
        to,
        "A passkey was added to your account",
        &format!(
            "A passkey named \"{name}\" can now sign in to your account. If this was not you, \
             delete it under your account's passkeys, reset your password, and contact support."
        ),
    )
}

/// Notice: a passkey signed in (or passed a second step).
pub fn passkey_used(to: &str, name: &str) -> Letter {
    notice_letter(
        to,
        "Your passkey was used to sign in",
        &format!(
            "Your passkey \"{name}\" was just used to sign in to your account. If this was not \
             you, delete the passkey under your account's passkeys and contact support."
        ),
    )
}

/// Notice: a passkey was deleted.
pub fn passkey_deleted(to: &str, name: &str) -> Letter {
    notice_letter(
        to,
        "A passkey was removed from your account",
        &format!(
            "The passkey \"{name}\" can no longer sign in to your account. If this was not you, \
             reset your password now and contact support."
        ),
    )
}

/// Notice: a passkey answered with a sign counter that went backwards: the
/// authenticator may have been cloned.
pub fn passkey_cloned(to: &str, name: &str) -> Letter {
    notice_letter(
        to,
        "A sign-in with a possibly copied passkey was refused",
        &format!(
            "A sign-in with your passkey \"{name}\" was refused: the passkey answered as if it \
             had been used fewer times than before, which happens when a security key has been \
             copied. If you did not just restore your device, delete this passkey, reset your \
             password, and contact support."
        ),
    )
}
