//! Account flows at the engine boundary: each operation called directly,
//! with its typed reply, no sockets. (What HTTP adds, status codes, bodies
//! and headers, is tested in `http-edge/tests/it`.)

use std::time::Duration;

use portcullis_engine::clock::Clock as _;
use portcullis_engine::ops::auth::{Login, LoginMfa, LoginReply, LogoutAll};
use portcullis_engine::ops::mfa::{ConfirmTotp, DisableTotp, EnrollTotp};
use portcullis_engine::ops::oauth::{Introspect, Revoke};
use portcullis_engine::ops::sessions::{DeleteSession, ListSessions};
use portcullis_engine::ops::users::{Me, Patch, ProfilePatch, UpdateMe};
use portcullis_engine::{AuthError, ClientInfo, Introspection, TokenProblem};
use zeroize::Zeroizing;

use crate::support::*;

fn bearer(grant: &portcullis_engine::TokenGrant) -> Option<String> {
    Some(grant.access_token.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_sessions_and_logout_all() {
    let t = TestEngine::start().await;
    let (user, first) = t.register("ada@example.com", "password-1").await;
    let me = t
        .engine
        .call(Me {
            bearer: bearer(&first),
        })
        .await
        .unwrap();
    assert_eq!(*me, *user);

    let updated = t
        .engine
        .call(UpdateMe {
            bearer: bearer(&first),
            patch: ProfilePatch {
                name: Patch::Set("Ada".into()),
                picture_url: Patch::Keep,
            },
        })
        .await
        .unwrap();
    assert_eq!(updated.name.as_deref(), Some("Ada"));
    let me = t
        .engine
        .call(Me {
            bearer: bearer(&first),
        })
        .await
        .unwrap();
    assert_eq!(
        me.name.as_deref(),
        Some("Ada"),
        "the change is what `me` reads"
    );

    let second = granted(
        t.engine
            .call(login_cmd("ada@example.com", "password-1"))
            .await
            .unwrap(),
    );
    let sessions = t
        .engine
        .call(ListSessions {
            bearer: bearer(&first),
        })
        .await
        .unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions.iter().filter(|s| s.current).count(), 1);
    assert!(
        sessions
            .iter()
            .any(|s| s.current && s.id == first.session_id)
    );

    // Ending the other session: its access token is dead at once.
    t.engine
        .call(DeleteSession {
            bearer: bearer(&first),
            session_id: second.session_id.clone(),
        })
        .await
        .unwrap();
    assert!(matches!(
        t.engine
            .call(Me {
                bearer: bearer(&second)
            })
            .await,
        Err(AuthError::Unauthenticated(TokenProblem::Revoked))
    ));
    assert!(matches!(
        t.engine
            .call(DeleteSession {
                bearer: bearer(&first),
                session_id: second.session_id.clone(),
            })
            .await,
        Err(AuthError::NotFound)
    ));

    t.engine
        .call(LogoutAll {
            bearer: bearer(&first),
        })
        .await
        .unwrap();
    assert!(matches!(
        t.engine
            .call(Me {
                bearer: bearer(&first)
            })
            .await,
        Err(AuthError::Unauthenticated(TokenProblem::Revoked))
    ));
    assert!(matches!(
        t.engine.call(refresh_cmd(&first.refresh_token)).await,
        Err(AuthError::InvalidGrant)
    ));
}

/// RFC 4648 base32 without padding (what enrollment shows).
fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0u64;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes() {
        let v = ALPHABET.iter().position(|a| *a == c).unwrap() as u64;
        bits = (bits << 5) | v;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

/// A right password of an account with TOTP on: the `mfa_token` it gets.
async fn first_step(t: &TestEngine, address: &str) -> Zeroizing<String> {
    match t
        .engine
        .call(Login {
            email: email(address),
            password: password("password-1"),
            device_token: None,
            client: ClientInfo::default(),
        })
        .await
        .unwrap()
    {
        LoginReply::MfaRequired(p) => Zeroizing::new(p.mfa_token.expose().to_owned()),
        LoginReply::Granted(_) => panic!("expected the second step"),
    }
}

/// The second step of a login with `code`.
async fn second_step(
    t: &TestEngine,
    mfa_token: Zeroizing<String>,
    code: String,
) -> Result<portcullis_engine::TokenGrant, AuthError> {
    t.engine
        .call(LoginMfa {
            mfa_token,
            proof: portcullis_engine::ops::auth::SecondFactorProof::Code(code),
            client: ClientInfo::default(),
        })
        .await
}

fn code(secret: &[u8], now_ms: u64) -> String {
    use portcullis_engine::mfa::totp;
    format!("{:06}", totp::code_at(secret, totp::step_at(now_ms), 6))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_enrollment_the_second_step_and_recovery_codes() {
    let t = TestEngine::start().await;
    let (_, grant) = t.register("mfa@example.com", "password-1").await;
    let client = ClientInfo::default();

    assert!(matches!(
        t.engine
            .call(EnrollTotp {
                bearer: bearer(&grant),
                password: password("wrong-password"),
                client: client.clone(),
            })
            .await,
        Err(AuthError::InvalidCredentials)
    ));
    let enrollment = t
        .engine
        .call(EnrollTotp {
            bearer: bearer(&grant),
            password: password("password-1"),
            client: client.clone(),
        })
        .await
        .unwrap();
    let secret = base32_decode(enrollment.secret.expose());
    assert!(
        enrollment
            .otpauth_uri
            .expose()
            .starts_with("otpauth://totp/")
    );

    let recovery = t
        .engine
        .call(ConfirmTotp {
            bearer: bearer(&grant),
            code: code(&secret, t.clock.now_ms()),
            client: client.clone(),
        })
        .await
        .unwrap();
    assert_eq!(recovery.len(), 10);
    let me = t
        .engine
        .call(Me {
            bearer: bearer(&grant),
        })
        .await
        .unwrap();
    assert!(me.mfa_enabled);

    // A right password now asks for the second factor.
    let pending = first_step(&t, "mfa@example.com").await;
    let mfa_token = || pending.clone();
    // The code used to confirm is spent: the same step is refused.
    assert!(matches!(
        second_step(&t, mfa_token(), code(&secret, t.clock.now_ms())).await,
        Err(AuthError::InvalidMfa)
    ));
    t.clock.advance(Duration::from_secs(30));
    let signed_in = second_step(&t, mfa_token(), code(&secret, t.clock.now_ms()))
        .await
        .unwrap();
    assert!(signed_in.device_token.is_some());
    // The mfa_token is used up by the success.
    t.clock.advance(Duration::from_secs(30));
    assert!(matches!(
        second_step(&t, mfa_token(), code(&secret, t.clock.now_ms())).await,
        Err(AuthError::InvalidMfa)
    ));

    // A recovery code works once.
    let use_recovery = |code: String| async {
        second_step(&t, first_step(&t, "mfa@example.com").await, code).await
    };
    let first_code = recovery[0].expose().to_owned();
    assert!(use_recovery(first_code.clone()).await.is_ok());
    assert!(matches!(
        use_recovery(first_code).await,
        Err(AuthError::InvalidMfa)
    ));

    // Off, with the password and a code; then a password alone signs in.
    t.clock.advance(Duration::from_secs(30));
    t.engine
        .call(DisableTotp {
            bearer: bearer(&signed_in),
            code: code(&secret, t.clock.now_ms()),
            password: password("password-1"),
            client,
        })
        .await
        .unwrap();
    assert!(matches!(
        t.engine
            .call(login_cmd("mfa@example.com", "password-1"))
            .await
            .unwrap(),
        LoginReply::Granted(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_either_token_ends_the_session_for_introspection() {
    let t = TestEngine::start().await;
    let (user, grant) = t.register("rs@example.com", "password-1").await;
    let token = |s: &str| Zeroizing::new(s.to_owned());
    let access = t
        .engine
        .call(Introspect {
            token: token(&grant.access_token),
            hint: None,
        })
        .await
        .unwrap();
    let Introspection::Active { sub, sid, .. } = access else {
        panic!("a live access token is active: {access:?}");
    };
    assert_eq!((sub, sid), (user.id.clone(), grant.session_id.clone()));
    let refresh = t
        .engine
        .call(Introspect {
            token: token(&grant.refresh_token),
            hint: None,
        })
        .await
        .unwrap();
    assert!(matches!(
        refresh,
        Introspection::Active {
            token_type: "refresh_token",
            ..
        }
    ));

    t.engine
        .call(Revoke {
            token: token(&grant.refresh_token),
            hint: None,
        })
        .await
        .unwrap();
    for t_ in [&grant.access_token, &*grant.refresh_token] {
        assert_eq!(
            t.engine
                .call(Introspect {
                    token: token(t_),
                    hint: None,
                })
                .await
                .unwrap(),
            Introspection::Inactive
        );
    }
    // Revoking what is not a token is no error (RFC 7009).
    t.engine
        .call(Revoke {
            token: token("not-a-token"),
            hint: None,
        })
        .await
        .unwrap();
}
