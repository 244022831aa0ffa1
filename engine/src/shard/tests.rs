use super::*;
use std::sync::Mutex;

fn task(f: impl Future<Output = ()> + Send + 'static) -> Task {
    Box::pin(f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_of_one_partition_never_overlap_and_keep_order() {
    let shards = Shards::spawn(2, 1000, Duration::from_secs(5), &Handle::current())
        .await
        .unwrap();
    let key = PartitionKey::User(UserId([1; 16]));
    let log = Arc::new(Mutex::new(Vec::new()));
    let running = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..50 {
        let log = log.clone();
        let running = running.clone();
        let tx = tx.clone();
        shards
            .route(&key)
            .submit(
                key.clone(),
                task(async move {
                    assert_eq!(running.fetch_add(1, Ordering::SeqCst), 0, "overlap");
                    tokio::time::sleep(Duration::from_micros(200)).await;
                    log.lock().unwrap().push(i);
                    running.fetch_sub(1, Ordering::SeqCst);
                    tx.send(()).unwrap();
                }),
            )
            .unwrap();
    }
    for _ in 0..50 {
        rx.recv().await.unwrap();
    }
    assert_eq!(*log.lock().unwrap(), (0..50).collect::<Vec<_>>());
    shards.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_partitions_run_concurrently() {
    let shards = Shards::spawn(1, 1000, Duration::from_secs(5), &Handle::current())
        .await
        .unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for n in 0..2u8 {
        let key = PartitionKey::User(UserId([n; 16]));
        let barrier = barrier.clone();
        let tx = tx.clone();
        shards
            .route(&key)
            .submit(
                key.clone(),
                task(async move {
                    // Deadlocks unless both run at once.
                    barrier.wait().await;
                    tx.send(()).unwrap();
                }),
            )
            .unwrap();
    }
    for _ in 0..2 {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_operation_releases_its_partition() {
    let shards = Shards::spawn(1, 1000, Duration::from_secs(5), &Handle::current())
        .await
        .unwrap();
    let key = PartitionKey::Email("p@example.com".into());
    shards
        .route(&key)
        .submit(key.clone(), task(async { panic!("flow bug") }))
        .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    shards
        .route(&key)
        .submit(key.clone(), task(async move { tx.send(()).unwrap() }))
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .unwrap()
        .unwrap();
    // The slot is released just after the task's last statement.
    for _ in 0..500 {
        if shards.route(&key).depth() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("depth stayed at {}", shards.route(&key).depth());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_shard_refuses_at_once() {
    let shards = Shards::spawn(1, 2, Duration::from_secs(5), &Handle::current())
        .await
        .unwrap();
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    let key = PartitionKey::User(UserId([9; 16]));
    for _ in 0..2 {
        let mut rx = release_rx.clone();
        shards
            .route(&key)
            .submit(
                key.clone(),
                task(async move {
                    let _ = rx.wait_for(|v| *v).await;
                }),
            )
            .unwrap();
    }
    assert_eq!(
        shards.route(&key).submit(key.clone(), task(async {})),
        Err(Refused::Full)
    );
    release_tx.send(true).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unordered_permits_share_the_shard_bound_and_release_on_drop() {
    let shards = Shards::spawn(1, 2, Duration::from_secs(5), &Handle::current())
        .await
        .unwrap();
    let key = PartitionKey::User(UserId([7; 16]));
    let shard = shards.route(&key);
    let first = shard.permit().unwrap();
    let (release_tx, mut release_rx) = tokio::sync::watch::channel(false);
    shard
        .submit(
            key.clone(),
            task(async move {
                let _ = release_rx.wait_for(|v| *v).await;
            }),
        )
        .unwrap();
    assert_eq!(shard.depth(), 2);
    assert!(matches!(shard.permit(), Err(Refused::Full)));
    assert_eq!(
        shard.submit(key.clone(), task(async {})),
        Err(Refused::Full)
    );
    drop(first);
    assert_eq!(shard.depth(), 1);
    let second = shard.permit().unwrap();
    assert_eq!(shard.depth(), 2);
    drop(second);
    release_tx.send(true).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_past_its_timeout_is_abandoned_and_releases_the_partition() {
    let shards = Shards::spawn(1, 10, Duration::from_millis(50), &Handle::current())
        .await
        .unwrap();
    let key = PartitionKey::User(UserId([3; 16]));
    shards
        .route(&key)
        .submit(key.clone(), task(std::future::pending()))
        .unwrap();
    // Queued behind it for longer than the timeout: dropped unstarted.
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    shards
        .route(&key)
        .submit(key.clone(), task(async move { tx.send(()).unwrap() }))
        .unwrap();
    let waited = tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .unwrap();
    assert!(
        waited.is_err(),
        "an operation that waited out its timeout must not run"
    );
    // The partition is free again.
    let (tx, rx) = tokio::sync::oneshot::channel();
    shards
        .route(&key)
        .submit(key.clone(), task(async move { tx.send(()).unwrap() }))
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .unwrap()
        .unwrap();
}

#[test]
fn routing_is_stable_and_spreads() {
    let mut counts = [0usize; 8];
    for n in 0..=255u8 {
        let k = PartitionKey::User(UserId([n; 16]));
        assert_eq!(k.shard_of(8), k.shard_of(8));
        counts[k.shard_of(8)] += 1;
    }
    assert!(counts.iter().all(|c| *c > 10), "{counts:?}");
}
