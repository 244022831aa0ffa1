//! Outbox checks: mail queued with a record change, nothing queued by a
//! failed write, and the mailer's claims, retries and deletes.

use super::{Backends, T0, sample_mail, sample_user};
use crate::StoreError;

/// Messages queued with a record change come back when due, oldest first,
/// and the record lists them.
pub async fn mail_is_queued_with_the_record_and_due_in_order(b: &Backends) {
    let mut u = sample_user(41, "mail@example.com");
    b.users.create_user(&u).await.unwrap();
    let (m1, m2) = (sample_mail(1, u.id, T0), sample_mail(2, u.id, T0 + 1000));
    u.account.outbox = vec![m1.id, m2.id];
    u.version = 2;
    b.users
        .update_user_with_mail(&u, 1, &[m2.clone(), m1.clone()])
        .await
        .unwrap();
    assert_eq!(
        b.users
            .get_user(u.id)
            .await
            .unwrap()
            .unwrap()
            .account
            .outbox,
        vec![m1.id, m2.id]
    );
    assert_eq!(b.users.due_mail(T0 - 1, 10).await.unwrap(), vec![]);
    assert_eq!(b.users.due_mail(T0, 10).await.unwrap(), vec![m1.clone()]);
    assert_eq!(
        b.users.due_mail(T0 + 1000, 10).await.unwrap(),
        vec![m1.clone(), m2.clone()]
    );
    assert_eq!(b.users.due_mail(T0 + 1000, 1).await.unwrap(), vec![m1]);

    // An email change queues its messages the same way.
    let m3 = sample_mail(3, u.id, T0);
    u.email = "mail-new@example.com".into();
    u.account.outbox.push(m3.id);
    u.version = 3;
    b.users
        .change_email_with_mail(&u, 2, std::slice::from_ref(&m3))
        .await
        .unwrap();
    assert_eq!(b.users.due_mail(T0 + 1000, 10).await.unwrap().len(), 3);
}

/// A change that fails (stale version, taken address) queues nothing.
pub async fn mail_of_a_failed_write_is_not_queued(b: &Backends) {
    let mut u = sample_user(42, "nomail@example.com");
    b.users.create_user(&u).await.unwrap();
    b.users
        .create_user(&sample_user(43, "taken-by-other@example.com"))
        .await
        .unwrap();
    let m = sample_mail(4, u.id, T0);
    u.account.outbox = vec![m.id];
    u.version = 6;
    let err = b
        .users
        .update_user_with_mail(&u, 5, std::slice::from_ref(&m))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::VersionConflict { .. }), "{err:?}");
    u.email = "taken-by-other@example.com".into();
    u.version = 2;
    let err = b
        .users
        .change_email_with_mail(&u, 1, std::slice::from_ref(&m))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::EmailTaken), "{err:?}");
    assert_eq!(b.users.due_mail(u64::MAX, 10).await.unwrap(), vec![]);
    assert!(
        b.users
            .get_user(u.id)
            .await
            .unwrap()
            .unwrap()
            .account
            .outbox
            .is_empty()
    );
}

/// One mailer at a time holds a message; a retry reschedules it and
/// releases the claim; a delete removes it for good.
pub async fn mail_claims_retries_and_deletes(b: &Backends) {
    let mut u = sample_user(44, "claims@example.com");
    b.users.create_user(&u).await.unwrap();
    let mut m = sample_mail(5, u.id, T0);
    u.account.outbox = vec![m.id];
    u.version = 2;
    b.users
        .update_user_with_mail(&u, 1, std::slice::from_ref(&m))
        .await
        .unwrap();
    assert!(b.users.claim_mail(&m, T0, T0 + 1000).await.unwrap());
    assert!(
        !b.users.claim_mail(&m, T0 + 1, T0 + 2000).await.unwrap(),
        "held"
    );
    assert!(
        b.users.claim_mail(&m, T0 + 1001, T0 + 3000).await.unwrap(),
        "expired"
    );

    m.due_at_ms = T0 + 60_000;
    m.attempts = 1;
    b.users.retry_mail(&m).await.unwrap();
    assert_eq!(b.users.due_mail(T0 + 59_999, 10).await.unwrap(), vec![]);
    assert_eq!(
        b.users.due_mail(T0 + 60_000, 10).await.unwrap(),
        vec![m.clone()]
    );
    assert!(
        b.users.claim_mail(&m, T0 + 1002, T0 + 4000).await.unwrap(),
        "released"
    );

    b.users.delete_mail(&m).await.unwrap();
    assert_eq!(b.users.due_mail(u64::MAX, 10).await.unwrap(), vec![]);
    assert!(
        !b.users
            .claim_mail(&m, T0 + 9000, T0 + 10_000)
            .await
            .unwrap(),
        "gone"
    );
}
