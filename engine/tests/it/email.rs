//! The mailed-link flows at the engine boundary: each operation called
//! directly, the letter it queued read from the outbox (opened with the
//! data key), its token presented to the next operation. The mailer is
//! held back, so every queued letter is still in the outbox.

use std::time::Duration;

use portcullis_engine::clock::{Clock as _, ManualClock};
use portcullis_engine::datakey::DataKeys;
use portcullis_engine::mail::Letter;
use portcullis_engine::ops::email::{
    ConfirmEmailChange, ConfirmEmailVerification, RequestEmailChange, RequestEmailVerification,
};
use portcullis_engine::ops::password::{ForgotPassword, ResetPassword};
use portcullis_engine::ops::users::Me;
use portcullis_engine::{AuthError, ClientInfo, TokenProblem};
use portcullis_storage::UserStore;
use zeroize::Zeroizing;

use crate::support::*;

/// An engine whose mailer polls once at start, then not for an hour.
async fn start() -> TestEngine {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.account.mailer_poll = Duration::from_secs(3600);
    TestEngine::start_with(dir, cfg, ManualClock::new(1_800_000_000_000)).await
}

/// The queued letters to `to`, oldest first.
async fn letters_to(t: &TestEngine, to: &str) -> Vec<Letter> {
    let keys = DataKeys::load_or_create(&t.dir.path().join("keys")).unwrap();
    let due = t
        .store
        .due_mail(t.clock.now_ms() + 86_400_000, 100)
        .await
        .unwrap();
    due.iter()
        .map(|m| Letter::open(&keys, &m.id, &m.payload).unwrap())
        .filter(|l| l.to == to)
        .collect()
}

/// The one letter to `to` whose subject is `subject`, once it is queued.
async fn letter(t: &TestEngine, to: &str, subject: &str) -> Letter {
    for _ in 0..200 {
        let mut found: Vec<Letter> = letters_to(t, to)
            .await
            .into_iter()
            .filter(|l| l.subject == subject)
            .collect();
        if let Some(l) = found.pop() {
            assert!(found.is_empty(), "one letter '{subject}' to {to}");
            return l;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no letter '{subject}' to {to}");
}

/// The single-use token of the link in `letter`.
fn token(letter: &Letter) -> Zeroizing<String> {
    let start = letter.text.find("token=").expect("a link with a token") + "token=".len();
    Zeroizing::new(
        letter.text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_is_verified_by_its_mailed_link_once() {
    let t = start().await;
    let (_, grant) = t.register("v@example.com", "password-1").await;
    t.engine
        .call(RequestEmailVerification {
            bearer: Some(grant.access_token.clone()),
            client: ClientInfo::default(),
        })
        .await
        .unwrap();
    let mail = letter(&t, "v@example.com", "Confirm your email address").await;
    assert!(
        mail.text.contains("/verify-email?token=pcv_"),
        "{}",
        mail.text
    );
    let user = t
        .engine
        .call(ConfirmEmailVerification {
            token: token(&mail),
        })
        .await
        .unwrap();
    assert!(user.email_verified);
    assert!(matches!(
        t.engine
            .call(ConfirmEmailVerification {
                token: token(&mail)
            })
            .await,
        Err(AuthError::InvalidToken)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailed_reset_sets_the_password_and_ends_every_session() {
    let t = start().await;
    let (_, grant) = t.register("r@example.com", "password-1").await;
    // An address without an account is accepted the same, and mailed nothing.
    t.engine
        .call(ForgotPassword {
            email: email("nobody@example.com"),
            client: ClientInfo::default(),
        })
        .await
        .unwrap();
    t.engine
        .call(ForgotPassword {
            email: email("r@example.com"),
            client: ClientInfo::default(),
        })
        .await
        .unwrap();
    let mail = letter(&t, "r@example.com", "Reset your password").await;
    assert!(letters_to(&t, "nobody@example.com").await.is_empty());
    t.engine
        .call(ResetPassword {
            token: token(&mail),
            new_password: password("a-new-password-2"),
            client: ClientInfo::default(),
        })
        .await
        .unwrap();
    assert!(matches!(
        t.engine
            .call(Me {
                bearer: Some(grant.access_token.clone())
            })
            .await,
        Err(AuthError::Unauthenticated(TokenProblem::Revoked))
    ));
    assert!(matches!(
        t.engine
            .call(login_cmd("r@example.com", "password-1"))
            .await,
        Err(AuthError::InvalidCredentials)
    ));
    let signed_in = granted(
        t.engine
            .call(login_cmd("r@example.com", "a-new-password-2"))
            .await
            .unwrap(),
    );
    let me = t
        .engine
        .call(Me {
            bearer: Some(signed_in.access_token),
        })
        .await
        .unwrap();
    assert!(me.email_verified, "a reset proves the mailbox");
    letter(&t, "r@example.com", "Your password was changed").await;
    assert!(matches!(
        t.engine
            .call(ResetPassword {
                token: token(&mail),
                new_password: password("a-third-password-3"),
                client: ClientInfo::default(),
            })
            .await,
        Err(AuthError::InvalidToken)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_change_moves_the_account_once_the_new_address_confirms() {
    let t = start().await;
    let (_, grant) = t.register("old@example.com", "password-1").await;
    t.engine
        .call(RequestEmailChange {
            bearer: Some(grant.access_token.clone()),
            new_email: email("new@example.com"),
            password: password("password-1"),
            client: ClientInfo::default(),
        })
        .await
        .unwrap();
    let mail = letter(&t, "new@example.com", "Confirm your new email address").await;
    // Nothing changes until the new address confirms.
    assert!(
        t.store
            .find_user_id_by_email("new@example.com")
            .await
            .unwrap()
            .is_none()
    );
    let user = t
        .engine
        .call(ConfirmEmailChange {
            token: token(&mail),
        })
        .await
        .unwrap();
    assert_eq!(user.email, "new@example.com");
    assert!(user.email_verified);
    let notice = letter(&t, "old@example.com", "Your sign-in address was changed").await;
    assert!(notice.text.contains("new@example.com"));
    // Every session ended; the new address signs in, the old one no more.
    assert!(matches!(
        t.engine
            .call(Me {
                bearer: Some(grant.access_token)
            })
            .await,
        Err(AuthError::Unauthenticated(TokenProblem::Revoked))
    ));
    granted(
        t.engine
            .call(login_cmd("new@example.com", "password-1"))
            .await
            .unwrap(),
    );
    assert!(matches!(
        t.engine
            .call(login_cmd("old@example.com", "password-1"))
            .await,
        Err(AuthError::InvalidCredentials)
    ));
}
