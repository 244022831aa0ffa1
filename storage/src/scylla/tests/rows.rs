//! `users` and `outbox` rows: records round-trip through their rows and
//! statement values, and what cannot be read back is refused.

use crate::StoreError;
use crate::conformance::sample_user;
use crate::model::{AccountState, UserId, UserRecord};
use crate::scylla::row::UserRow;
use crate::scylla::*;

fn row_of(u: &UserRecord) -> UserRow {
    UserRow {
        id: row::uuid(u.id),
        email: Some(u.email.clone()),
        password_hash: Some(u.password_hash.clone()),
        name: u.name.clone(),
        picture_url: u.picture_url.clone(),
        email_verified: Some(u.email_verified),
        mfa_enabled: Some(u.mfa_enabled),
        created_at_ms: Some(i64::try_from(u.created_at_ms).unwrap()),
        updated_at_ms: Some(i64::try_from(u.updated_at_ms).unwrap()),
        version: Some(i64::try_from(u.version).unwrap()),
        account_state: (u.account != AccountState::default())
            .then(|| crate::codec::encode_account(&u.account)),
    }
}

#[test]
fn a_user_round_trips_through_its_row_and_values() {
    let mut u = sample_user(3, "row@example.com");
    u.picture_url = Some("https://example.com/p.png".into());
    u.email_verified = true;
    u.version = 7;
    assert_eq!(row_of(&u).into_record().unwrap(), u);
    assert_eq!(
        row::insert_values(&u).unwrap().10,
        None,
        "no account state: null"
    );
    u.account.totp = Some(crate::model::TotpState {
        secret_sealed: vec![1, 2, 3],
        confirmed: true,
        last_step: Some(0),
        recovery_hashes: vec![[7; 32]; 10],
        recovery_sealed: vec![8; 40],
    });
    assert_eq!(row_of(&u).into_record().unwrap(), u);
    assert!(row::insert_values(&u).unwrap().10.is_some());
    let v = row::insert_values(&u).unwrap();
    assert_eq!(v.0, row::uuid(u.id));
    assert_eq!((v.1, v.2), (u.email.as_str(), u.password_hash.as_str()));
    assert_eq!((v.5, v.6, v.9), (true, false, 7));
    let up = row::update_values(&u, 6).unwrap();
    // SET ..., version = 7 WHERE id = ? IF version = 6 AND email = ?
    assert_eq!(
        (up.6, up.8, up.9, up.10),
        (7, row::uuid(u.id), 6, u.email.as_str())
    );
    assert_eq!(up.7, row::insert_values(&u).unwrap().10);
    let ch = row::update_email_values(&u, 6).unwrap();
    assert_eq!(
        (ch.0, ch.7, ch.9, ch.10),
        (u.email.as_str(), 7, row::uuid(u.id), 6)
    );
    assert_eq!(row::user_id(row::uuid(u.id)), u.id);
}

#[test]
fn missing_booleans_read_as_false_but_missing_essentials_are_corrupt() {
    let u = sample_user(4, "nulls@example.com");
    let mut r = row_of(&u);
    r.email_verified = None;
    r.mfa_enabled = None;
    let back = r.into_record().unwrap();
    assert!(!back.email_verified && !back.mfa_enabled);

    for broken in [
        UserRow {
            email: None,
            ..row_of(&u)
        },
        UserRow {
            password_hash: None,
            ..row_of(&u)
        },
        UserRow {
            version: None,
            ..row_of(&u)
        },
        UserRow {
            version: Some(0),
            ..row_of(&u)
        },
        UserRow {
            created_at_ms: Some(-1),
            ..row_of(&u)
        },
    ] {
        let err = broken.into_record().unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    }
}

#[test]
fn values_beyond_a_cql_bigint_are_refused_not_wrapped() {
    let mut u = sample_user(5, "big@example.com");
    u.version = u64::MAX;
    assert!(matches!(
        row::insert_values(&u),
        Err(StoreError::Backend(_))
    ));
}

#[test]
fn an_outbox_message_round_trips_through_its_row_and_values() {
    let m = crate::conformance::sample_mail(9, UserId([3; 16]), 1_800_000_000_000);
    let v = row::outbox_values(&m).unwrap();
    assert_eq!(v.0, schema::outbox_bucket(&m.id));
    assert!((0..schema::OUTBOX_BUCKETS).contains(&v.0));
    assert_eq!((v.1.into_bytes(), v.2), (m.id, row::uuid(m.user_id)));
    let back = row::OutboxRow {
        id: v.1,
        user_id: Some(v.2),
        created_at_ms: Some(v.3),
        due_at_ms: Some(v.4),
        attempts: Some(v.5),
        payload: Some(v.6.to_vec()),
    }
    .into_record()
    .unwrap();
    assert_eq!(back, m);
    let broken = row::OutboxRow {
        id: v.1,
        user_id: None,
        created_at_ms: None,
        due_at_ms: None,
        attempts: None,
        payload: None,
    };
    assert!(matches!(broken.into_record(), Err(StoreError::Corrupt(_))));
}
