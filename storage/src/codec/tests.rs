use super::*;

fn user() -> UserRecord {
    UserRecord {
        id: UserId([7; 16]),
        email: "ada@example.com".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        name: Some("Ada Lovelace".into()),
        picture_url: None,
        email_verified: true,
        mfa_enabled: false,
        created_at_ms: 1_700_000_000_000,
        updated_at_ms: 1_700_000_000_001,
        version: 3,
        account: Default::default(),
    }
}

#[test]
fn user_round_trips() {
    let u = user();
    assert_eq!(decode_user(&encode_user(&u)).unwrap(), u);
}

fn full_account() -> AccountState {
    AccountState {
        verify_email: Some(PendingToken {
            hash: [1; 32],
            expires_at_ms: 5,
        }),
        password_reset: None,
        email_change: Some(PendingEmailChange {
            token: PendingToken {
                hash: [2; 32],
                expires_at_ms: 6,
            },
            new_email: "new@example.com".into(),
        }),
        totp: Some(TotpState {
            secret_sealed: vec![9; 48],
            confirmed: true,
            last_step: Some(0),
            recovery_hashes: vec![[3; 32], [4; 32]],
        }),
        outbox: vec![[5; 16], [6; 16]],
        mfa_login: Some(PendingToken {
            hash: [8; 32],
            expires_at_ms: 9,
        }),
    }
}

#[test]
fn an_outbox_message_round_trips() {
    let m = OutboxRecord {
        id: [1; 16],
        user_id: UserId([2; 16]),
        created_at_ms: 3,
        due_at_ms: 4,
        attempts: 5,
        payload: vec![6; 300],
    };
    assert_eq!(decode_outbox(&encode_outbox(&m)).unwrap(), m);
    assert!(decode_outbox(&encode_outbox(&m)[..20]).is_err());
}

#[test]
fn a_user_with_account_state_round_trips() {
    let mut u = user();
    u.account = full_account();
    assert_eq!(decode_user(&encode_user(&u)).unwrap(), u);
    // Every part on its own, including a TOTP enrollment not yet confirmed.
    u.account = AccountState {
        password_reset: Some(PendingToken::default()),
        totp: Some(TotpState {
            last_step: None,
            ..TotpState::default()
        }),
        ..AccountState::default()
    };
    assert_eq!(decode_user(&encode_user(&u)).unwrap(), u);
    assert_eq!(
        decode_account(&encode_account(&full_account())).unwrap(),
        full_account()
    );
    // A pending MFA login without queued mail (the outbox count is written as 0).
    let only_mfa = AccountState {
        mfa_login: Some(PendingToken::default()),
        ..AccountState::default()
    };
    assert_eq!(
        decode_account(&encode_account(&only_mfa)).unwrap(),
        only_mfa
    );
}

#[test]
fn a_user_record_written_before_account_state_reads_with_none() {
    // What v1 wrote: the user fields, nothing after the version.
    let u = user();
    let old = encode_user(&u);
    let mut with = u.clone();
    with.account = full_account();
    assert!(encode_user(&with).starts_with(&old));
    assert_eq!(decode_user(&old).unwrap().account, AccountState::default());
}

#[test]
fn damaged_account_state_is_corrupt() {
    let bytes = encode_account(&full_account());
    for cut in [1, 10, bytes.len() - 1] {
        assert!(matches!(
            decode_account(&bytes[..cut]),
            Err(StoreError::Corrupt(_))
        ));
    }
}

#[test]
fn session_round_trips() {
    let s = SessionRecord {
        user_id: UserId([1; 16]),
        id: SessionId([2; 16]),
        created_at_ms: 10,
        last_used_at_ms: 20,
        expires_at_ms: u64::MAX,
        max_expires_at_ms: 40,
        ip: Some("203.0.113.9".into()),
        user_agent: Some("curl/8".into()),
        refresh_hash: [9; 32],
        generation: 2,
        rotated_at_ms: 15,
    };
    assert_eq!(decode_session(&encode_session(&s)).unwrap(), s);
}

#[test]
fn key_round_trips_with_and_without_expiry() {
    let mut k = SigningKeyRecord {
        kid: "kid-1".into(),
        pkcs8: vec![1, 2, 3],
        public: [4; 32],
        created_at_ms: 1,
        not_before_ms: 2,
        expires_at_ms: None,
    };
    assert_eq!(decode_key(&encode_key(&k)).unwrap(), k);
    k.expires_at_ms = Some(0);
    assert_eq!(decode_key(&encode_key(&k)).unwrap(), k);
}

#[test]
fn damaged_records_are_corrupt_errors_not_panics() {
    let bytes = encode_user(&user());
    for cut in 0..bytes.len() {
        assert!(matches!(
            decode_user(&bytes[..cut]),
            Err(StoreError::Corrupt(_))
        ));
    }
    let mut wrong_tag = bytes.clone();
    wrong_tag[0] = 99;
    assert!(matches!(
        decode_user(&wrong_tag),
        Err(StoreError::Corrupt(_))
    ));
    // A huge length prefix must not allocate or panic.
    let mut d = Dec::new(&[1, 0xff, 0xff, 0xff, 0xff, 0x0f], "t", 1).unwrap();
    assert!(d.bytes().is_err());
}
