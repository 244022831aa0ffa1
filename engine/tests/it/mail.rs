//! The outbox and the mailer, end to end on the embedded store with the
//! file transport: delivery, vouching, and delivery after a restart.

use std::path::Path;
use std::time::Duration;

use portcullis_engine::clock::ManualClock;
use portcullis_engine::datakey::DataKeys;
use portcullis_engine::jobs::mailer::VOUCH_GRACE;
use portcullis_engine::mail::transport::file_name;
use portcullis_engine::mail::{Letter, notice_letter};
use portcullis_storage::{OutboxRecord, UserId, UserStore};

use crate::support::*;

fn letter() -> Letter {
    notice_letter(
        "mailer@example.com",
        "Your password was changed",
        "It was you, we hope.",
    )
}

/// Queues `letter` for `user` as message `n`; `vouch`: whether the record lists it.
async fn queue(t: &TestEngine, user: UserId, n: u8, vouch: bool) -> [u8; 16] {
    let keys = DataKeys::load_or_create(&t.dir.path().join("keys")).unwrap();
    let mut id = [n; 16];
    id[0] = 0x01;
    let now = portcullis_engine::clock::Clock::now_ms(&*t.clock);
    let m = OutboxRecord {
        id,
        user_id: user,
        created_at_ms: now,
        due_at_ms: now,
        attempts: 0,
        payload: letter().seal(&keys, &id).unwrap(),
    };
    let mut u = t.store.get_user(user).await.unwrap().unwrap();
    let expected = u.version;
    if vouch {
        u.account.outbox.push(id);
    }
    u.version += 1;
    t.store
        .update_user_with_mail(&u, expected, std::slice::from_ref(&m))
        .await
        .unwrap();
    id
}

fn mail_files(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir.join("mail")) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".eml"))
        .collect();
    names.sort();
    names
}

async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("not within 5 s: {what}");
}

fn user_id(view: &portcullis_engine::UserView) -> UserId {
    let uuid = uuid::Uuid::parse_str(&view.id).unwrap();
    UserId(uuid.into_bytes())
}

async fn start(
    dir: tempfile::TempDir,
    clock: std::sync::Arc<ManualClock>,
    poll: Duration,
) -> TestEngine {
    let mut cfg = config(dir.path());
    cfg.account.mailer_poll = poll;
    TestEngine::start_with(dir, cfg, clock).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vouched_message_is_delivered_once_and_leaves_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let t = start(
        dir,
        ManualClock::new(1_800_000_000_000),
        Duration::from_millis(20),
    )
    .await;
    let (user, _) = t.register("mailer@example.com", "password-1").await;
    let uid = user_id(&user);
    let id = queue(&t, uid, 1, true).await;
    let dir = t.dir.path().to_owned();
    eventually("the .eml file", || mail_files(&dir) == vec![file_name(&id)]).await;
    let eml = std::fs::read_to_string(dir.join("mail").join(file_name(&id))).unwrap();
    assert!(eml.contains("To: mailer@example.com"), "{eml}");
    assert!(eml.contains("Subject: Your password was changed"));
    // Gone from the outbox, and no longer vouched for by the record.
    let mut left = true;
    for _ in 0..200 {
        let rec = t.store.get_user(uid).await.unwrap().unwrap();
        left = !t.store.due_mail(u64::MAX, 10).await.unwrap().is_empty()
            || !rec.account.outbox.is_empty();
        if !left {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(!left, "delivered message still queued or vouched");
    // The outbox's count (its bound) is back to zero, not merely its keys.
    assert_eq!(t.store.outbox_len().await.unwrap(), Some(0));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unvouched_message_is_never_sent_and_dropped_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let t = start(
        dir,
        ManualClock::new(1_800_000_000_000),
        Duration::from_millis(20),
    )
    .await;
    let (user, _) = t.register("mailer@example.com", "password-1").await;
    queue(&t, user_id(&user), 2, false).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        mail_files(t.dir.path()).is_empty(),
        "sent for a change the record does not list"
    );
    assert_eq!(
        t.store.due_mail(u64::MAX, 10).await.unwrap().len(),
        1,
        "kept during the grace"
    );
    t.clock.advance(VOUCH_GRACE + Duration::from_secs(1));
    let mut gone = false;
    for _ in 0..200 {
        if t.store.due_mail(u64::MAX, 10).await.unwrap().is_empty() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(gone, "unvouched message not dropped after the grace");
    assert!(mail_files(t.dir.path()).is_empty());
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_queued_before_a_stop_is_delivered_once_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_800_000_000_000);
    // The first poll runs at start-up; the next only in an hour: the message
    // queued now waits in the outbox while the engine stops.
    let t = start(dir, clock, Duration::from_secs(3600)).await;
    let (user, _) = t.register("mailer@example.com", "password-1").await;
    let id = queue(&t, user_id(&user), 3, true).await;
    assert!(mail_files(t.dir.path()).is_empty());
    let (dir, clock) = t.stop().await;

    let t = start(dir, clock, Duration::from_millis(20)).await;
    let path = t.dir.path().to_owned();
    eventually("delivery after the restart", || {
        mail_files(&path) == vec![file_name(&id)]
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        mail_files(&path),
        vec![file_name(&id)],
        "exactly one message"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_nobody_vouches_for_yet_do_not_hold_up_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let t = start(
        dir,
        ManualClock::new(1_800_000_000_000),
        Duration::from_millis(20),
    )
    .await;
    let (stuck, _) = t.register("stuck@example.com", "password-1").await;
    let (other, _) = t.register("waiting@example.com", "password-1").await;
    // Forty messages at the head of the outbox whose record does not (yet)
    // vouch for them (a write whose outcome was unknown looks like this).
    for n in 10..50 {
        queue(&t, user_id(&stuck), n, false).await;
    }
    // Another user's message, queued after them.
    let id = queue(&t, user_id(&other), 60, true).await;
    let dir = t.dir.path().to_owned();
    eventually("the other user's message", || {
        mail_files(&dir) == vec![file_name(&id)]
    })
    .await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_met_before_its_record_vouches_for_it_is_sent_once_it_does() {
    // ScyllaDB queues a message, then writes the record that vouches for
    // it: a mailer polling in between must not put the message aside.
    let dir = tempfile::tempdir().unwrap();
    let t = start(
        dir,
        ManualClock::new(1_800_000_000_000),
        Duration::from_millis(20),
    )
    .await;
    let (user, _) = t.register("mailer@example.com", "password-1").await;
    let uid = user_id(&user);
    let id = queue(&t, uid, 7, false).await;
    // Several polls meet it unvouched.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(mail_files(t.dir.path()).is_empty());
    // Now its record vouches for it; the clock has not moved.
    let mut u = t.store.get_user(uid).await.unwrap().unwrap();
    let expected = u.version;
    u.account.outbox.push(id);
    u.version += 1;
    t.store.update_user(&u, expected).await.unwrap();
    let dir = t.dir.path().to_owned();
    eventually("delivery once vouched", || {
        mail_files(&dir) == vec![file_name(&id)]
    })
    .await;
    t.stop().await;
}
