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
            recovery_sealed: vec![10; 57],
        }),
        outbox: vec![[5; 16], [6; 16]],
        mfa_login: Some(PendingToken {
            hash: [8; 32],
            expires_at_ms: 9,
        }),
        credentials_epoch: 12,
        device_epoch: 4,
        identities: vec![
            crate::model::LinkedIdentity {
                provider: "corp".into(),
                subject: "248289761001".into(),
                email: Some("a@example.com".into()),
                email_verified: true,
                linked_at_ms: 77,
            },
            crate::model::LinkedIdentity {
                provider: "github".into(),
                subject: "1".into(),
                email: None,
                email_verified: false,
                linked_at_ms: 78,
            },
        ],
        passkeys: vec![
            crate::model::StoredPasskey {
                id: vec![7; 16],
                name: "Laptop".into(),
                created_at_ms: 80,
                last_used_at_ms: None,
                backed_up: false,
                sealed: vec![11; 200],
            },
            crate::model::StoredPasskey {
                id: vec![8; 64],
                name: "Phone \u{1F4F1}".into(),
                created_at_ms: 81,
                last_used_at_ms: Some(0),
                backed_up: true,
                sealed: vec![12; 180],
            },
        ],
    }
}

/// What the previous version wrote (no epochs, no sealed recovery codes),
/// for the compatibility checks.
fn encode_account_v1(a: &AccountState) -> Vec<u8> {
    let mut e = Enc::new(ACCOUNT_V1);
    enc_token(&mut e, a.verify_email.as_ref());
    enc_token(&mut e, a.password_reset.as_ref());
    match &a.email_change {
        None => {
            e.u64(0);
        }
        Some(c) => {
            e.u64(1);
            enc_token(&mut e, Some(&c.token));
            e.str(&c.new_email);
        }
    }
    match &a.totp {
        None => {
            e.u64(0);
        }
        Some(t) => {
            e.u64(1)
                .bytes(&t.secret_sealed)
                .bool(t.confirmed)
                .u64(t.last_step.map_or(0, |s| s.saturating_add(1)))
                .u64(t.recovery_hashes.len() as u64);
            for h in &t.recovery_hashes {
                e.fixed(h);
            }
        }
    }
    if !a.outbox.is_empty() || a.mfa_login.is_some() {
        e.u64(a.outbox.len() as u64);
        for id in &a.outbox {
            e.fixed(id);
        }
    }
    if a.mfa_login.is_some() {
        enc_token(&mut e, a.mfa_login.as_ref());
    }
    e.finish()
}

#[test]
fn the_previous_version_reads_what_this_one_writes() {
    // The previous decoder stops after the pending MFA login and ignores
    // the rest: what this version writes starts with what it wrote.
    let mut a = full_account();
    let new = encode_account(&a);
    a.credentials_epoch = 0;
    a.device_epoch = 0;
    if let Some(t) = &mut a.totp {
        t.recovery_sealed.clear();
    }
    assert!(new.starts_with(&encode_account_v1(&a)));
    // Each new field alone survives a round trip.
    for f in 0..3 {
        let mut only = AccountState::default();
        match f {
            0 => only.credentials_epoch = 5,
            1 => only.device_epoch = 6,
            _ => {
                only.totp = Some(TotpState {
                    recovery_sealed: vec![1; 30],
                    ..TotpState::default()
                })
            }
        }
        assert_eq!(decode_account(&encode_account(&only)).unwrap(), only);
    }
}

#[test]
fn account_state_written_by_the_first_format_still_reads() {
    let mut old = full_account();
    old.identities.clear();
    old.passkeys.clear();
    old.credentials_epoch = 0;
    old.device_epoch = 0;
    if let Some(t) = &mut old.totp {
        t.recovery_sealed.clear();
    }
    assert_eq!(decode_account(&encode_account_v1(&old)).unwrap(), old);
    old.outbox.clear();
    old.mfa_login = None;
    assert_eq!(decode_account(&encode_account_v1(&old)).unwrap(), old);
    let only_mfa = AccountState {
        mfa_login: Some(PendingToken::default()),
        ..AccountState::default()
    };
    assert_eq!(
        decode_account(&encode_account_v1(&only_mfa)).unwrap(),
        only_mfa
    );
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
    // Identities alone (every earlier optional part written empty).
    let only_identities = AccountState {
        identities: full_account().identities,
        ..AccountState::default()
    };
    assert_eq!(
        decode_account(&encode_account(&only_identities)).unwrap(),
        only_identities
    );
    // Passkeys alone.
    let only_passkeys = AccountState {
        passkeys: full_account().passkeys,
        ..AccountState::default()
    };
    assert_eq!(
        decode_account(&encode_account(&only_passkeys)).unwrap(),
        only_passkeys
    );
    // What the version before passkeys wrote (ends after the identities)
    // reads with none.
    let before = AccountState {
        passkeys: Vec::new(),
        ..full_account()
    };
    let bytes = encode_account(&before);
    assert!(encode_account(&full_account()).starts_with(&bytes));
    assert_eq!(decode_account(&bytes).unwrap(), before);
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
        amr: vec!["pwd".into(), "otp".into()],
        auth_time_ms: 9,
    };
    assert_eq!(decode_session(&encode_session(&s)).unwrap(), s);
    // A session written before sessions kept their authentication reads as
    // a password sign-in at its creation.
    let bytes = encode_session(&s);
    let old_len = bytes.len() - 1 - (1 + 3) - (1 + 3) - 1;
    let old = decode_session(&bytes[..old_len]).unwrap();
    assert_eq!(old.amr, vec!["pwd".to_owned()]);
    assert_eq!(old.auth_time_ms, 10);
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
