//! The measured phases a child process runs for one engine: durable
//! writes, create-if-absent, reads and the mixed workload; and their rows.

use crate::committer::spawn_committer;
use crate::data::{key_of, make_value, splitmix};
use crate::engines::{Engine, Op, ReadMode, Req, Tbl, open_engine};
use crate::stats::{cpu_cols, cpu_now, mean, pct, rusage};
use crate::{
    CHANNEL_CAP, MAX_GROUP, MIXED_READERS, MIXED_WRITERS, R, READ_CHUNK, READ_TASKS, Row,
    SPACE_EMAIL, SPACE_KV, SPACE_UID, WRITE_TASKS,
};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};
use std::{fmt::Write as _, io::Write as _, path::Path, process::Command, sync::Arc};
use tokio::sync::{mpsc, oneshot};

fn emit(phase: &str, engine: &str, row: Row) {
    let mut line = format!("@R\t{phase}\t{engine}");
    for (k, v) in row {
        let _ = write!(line, "\t{k}={v}");
    }
    println!("{line}");
    let _ = std::io::stdout().flush();
}
async fn durable(tx: &mpsc::Sender<Req>, op: Op) -> bool {
    let (atx, arx) = oneshot::channel();
    tx.send(Req { op, ack: atx }).await.expect("committer gone");
    arx.await.expect("ack dropped")
}
/// `total` requests from `tasks` tasks, each awaiting its ack before sending the next.
fn drive_writes(
    rt: &tokio::runtime::Runtime,
    engine: &Arc<dyn Engine>,
    total: u64,
    make: Arc<dyn Fn(u64) -> Op + Send + Sync>,
) -> Row {
    let (tx, rx) = mpsc::channel::<Req>(CHANNEL_CAP);
    let committer = spawn_committer(engine.clone(), rx);
    let (c0, t0) = (cpu_now(), Instant::now());
    let handles: Vec<_> = (0..WRITE_TASKS)
        .map(|t| {
            let (tx, make) = (tx.clone(), make.clone());
            rt.spawn(async move {
                let (mut lats, mut accepted) = (Vec::new(), 0u64);
                for i in (t..total).step_by(WRITE_TASKS as usize) {
                    let op = make(i);
                    let s = Instant::now();
                    accepted += u64::from(durable(&tx, op).await);
                    lats.push(s.elapsed().as_nanos() as u64);
                }
                (lats, accepted)
            })
        })
        .collect();
    drop(tx);
    let res = rt.block_on(async {
        let mut v = Vec::new();
        for h in handles {
            v.push(h.await.unwrap());
        }
        v
    });
    let (wall, c1, cs) = (
        t0.elapsed().as_secs_f64(),
        cpu_now(),
        committer.join().unwrap(),
    );
    let accepted: u64 = res.iter().map(|r| r.1).sum();
    let mut l: Vec<u64> = res.into_iter().flat_map(|r| r.0).collect();
    l.sort_unstable();
    let n = l.len() as f64;
    let mut r = row!["ops" => l.len(), "secs" => format!("{wall:.2}"), "ops/s" => format!("{:.0}", n / wall),
        "mean_us" => format!("{:.0}", mean(&l) / 1e3), "p50_us" => pct(&l, 50.0) / 1000, "p99_us" => pct(&l, 99.0) / 1000,
        "max_us" => l.last().unwrap_or(&0) / 1000, "avg_grp" => format!("{:.1}", cs.ops as f64 / cs.groups.max(1) as f64),
        "max_grp" => cs.max_group, "commit_us/grp" => format!("{:.0}", cs.commit_ns as f64 / cs.groups.max(1) as f64 / 1e3),
        "committer_cpu_us/op" => format!("{:.1}", cs.thread_cpu_us as f64 / n), "accepted" => accepted];
    r.extend(cpu_cols(c0, c1, wall, n, "op"));
    r
}
fn drive_reads(
    rt: &tokio::runtime::Runtime,
    engine: &Arc<dyn Engine>,
    mode: ReadMode,
    total: u64,
    n_keys: u64,
) -> Row {
    let (c0, t0) = (cpu_now(), Instant::now());
    let handles: Vec<_> = (0..READ_TASKS)
        .map(|t| {
            let engine = engine.clone();
            let mine = total / READ_TASKS + u64::from(t < total % READ_TASKS);
            rt.spawn(async move {
                let (mut rng, mut done, mut found, mut keys) = (
                    splitmix(0xFEED ^ t),
                    0u64,
                    0u64,
                    Vec::with_capacity(READ_CHUNK),
                );
                while done < mine {
                    keys.clear();
                    let n = (mine - done).min(READ_CHUNK as u64);
                    for _ in 0..n {
                        rng = splitmix(rng);
                        keys.push(key_of(SPACE_KV, rng % n_keys));
                    }
                    found += engine.read_chunk(mode, &keys).expect("read failed");
                    done += n;
                    tokio::task::yield_now().await; // one yield per 100 reads
                }
                found
            })
        })
        .collect();
    let found: u64 = rt.block_on(async {
        let mut f = 0;
        for h in handles {
            f += h.await.unwrap();
        }
        f
    });
    let (wall, c1) = (t0.elapsed().as_secs_f64(), cpu_now());
    assert_eq!(found, total, "all point reads must hit");
    let mut r = row!["reads" => total, "secs" => format!("{wall:.2}"), "reads/s" => format!("{:.0}", total as f64 / wall)];
    r.extend(
        cpu_cols(c0, c1, wall, total as f64, "read")
            .into_iter()
            .filter(|(k, _)| !k.starts_with("disk")),
    );
    r
}
fn drive_mixed(
    rt: &tokio::runtime::Runtime,
    engine: &Arc<dyn Engine>,
    secs: u64,
    n_keys: u64,
) -> Row {
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<Req>(CHANNEL_CAP);
    let committer = spawn_committer(engine.clone(), rx);
    let mode = engine.default_read_mode();
    let (c0, t0) = (cpu_now(), Instant::now());
    let writers: Vec<_> = (0..MIXED_WRITERS)
        .map(|t| {
            let (tx, stop) = (tx.clone(), stop.clone());
            rt.spawn(async move {
                let (mut lats, mut rng, mut ver) =
                    (Vec::new(), splitmix(0xBEEF ^ t), 1_000_000 * (t + 1));
                while !stop.load(Relaxed) {
                    // overwrite a random existing key (e.g. refresh-token rotation)
                    rng = splitmix(rng);
                    ver += 1;
                    let (idx, s) = (rng % n_keys, Instant::now());
                    let key = key_of(SPACE_KV, idx);
                    durable(
                        &tx,
                        Op::Put {
                            table: Tbl::Kv,
                            key,
                            val: make_value(&key, idx, ver),
                        },
                    )
                    .await;
                    lats.push(s.elapsed().as_nanos() as u64);
                }
                lats
            })
        })
        .collect();
    drop(tx);
    let readers: Vec<_> = (0..MIXED_READERS)
        .map(|t| {
            let (engine, stop) = (engine.clone(), stop.clone());
            rt.spawn(async move {
                let (mut lats, mut rng) = (Vec::new(), splitmix(0xCAFE ^ t));
                while !stop.load(Relaxed) {
                    rng = splitmix(rng);
                    let (k, s) = ([key_of(SPACE_KV, rng % n_keys)], Instant::now());
                    assert_eq!(engine.read_chunk(mode, &k).expect("read failed"), 1);
                    lats.push(s.elapsed().as_nanos() as u64);
                    tokio::task::yield_now().await; // request boundary
                }
                lats
            })
        })
        .collect();
    let stop2 = stop.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(secs));
        stop2.store(true, Relaxed);
    });
    let (mut wl, mut rl) = rt.block_on(async {
        let (mut w, mut r) = (Vec::new(), Vec::new());
        for h in writers {
            w.extend(h.await.unwrap());
        }
        for h in readers {
            r.extend(h.await.unwrap());
        }
        (w, r)
    });
    let (wall, c1, cs) = (
        t0.elapsed().as_secs_f64(),
        cpu_now(),
        committer.join().unwrap(),
    );
    wl.sort_unstable();
    rl.sort_unstable();
    let mut r = row!["secs" => format!("{wall:.2}"), "writes/s" => format!("{:.0}", wl.len() as f64 / wall),
        "reads/s" => format!("{:.0}", rl.len() as f64 / wall), "w_p50_us" => pct(&wl, 50.0) / 1000, "w_p99_us" => pct(&wl, 99.0) / 1000,
        "r_p50_us" => format!("{:.1}", pct(&rl, 50.0) as f64 / 1e3), "r_p99_us" => format!("{:.1}", pct(&rl, 99.0) as f64 / 1e3),
        "avg_grp" => format!("{:.1}", cs.ops as f64 / cs.groups.max(1) as f64),
        "cpu%" => format!("{:.0}", (c1.rusage_us - c0.rusage_us) as f64 / 1e4 / wall),
        "committer_cpu%" => format!("{:.0}", cs.thread_cpu_us as f64 / 1e4 / wall)];
    r.extend(
        cpu_cols(c0, c1, wall, 1.0, "x")
            .into_iter()
            .filter(|(k, _)| k.ends_with('%')),
    );
    r
}
fn du_kib(dir: &Path, apparent: bool) -> String {
    let mut c = Command::new("du");
    c.arg("-sk");
    if apparent {
        c.arg("--apparent-size");
    }
    c.arg(dir)
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .next()
                .unwrap_or("?")
                .to_string()
        })
        .unwrap_or("?".into())
}
pub(crate) fn run_child(kind: &str, dir: &Path, scale: f64, mixed_secs: u64) -> R<()> {
    let sc = |n: u64| ((n as f64 * scale) as u64).max(1000);
    let (n_write, n_cond, n_read) = (sc(200_000), sc(100_000), sc(1_000_000));
    let n_pre = n_cond / 2;
    let engine = open_engine(kind, dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()?;

    eprintln!("[{kind}] 2: {n_write} durable puts");
    let make: Arc<dyn Fn(u64) -> Op + Send + Sync> = Arc::new(|i| {
        let key = key_of(SPACE_KV, i);
        Op::Put {
            table: Tbl::Kv,
            val: make_value(&key, i, 0),
            key,
        }
    });
    emit(
        "2 write: 64 tasks x durable put (16B key, 300B value)",
        kind,
        drive_writes(&rt, &engine, n_write, make),
    );
    engine.quiesce();

    eprintln!("[{kind}] 3: preload {n_pre} users, then {n_cond} create-if-absent");
    let cond = |e: u64| {
        let key = key_of(SPACE_EMAIL, e);
        Op::CreateIfAbsent {
            val: make_value(&key, e, 0),
            key,
            key2: key_of(SPACE_UID, e),
            val2: key.to_vec(),
        }
    };
    for start in (0..n_pre).step_by(MAX_GROUP) {
        let ops: Vec<Op> = (start..(start + MAX_GROUP as u64).min(n_pre))
            .map(cond)
            .collect();
        engine.commit_group(&ops, &mut Vec::new())?;
    }
    engine.quiesce();
    // even i -> an email preloaded above (must be rejected); odd i -> a fresh email (accepted)
    let make: Arc<dyn Fn(u64) -> Op + Send + Sync> = Arc::new(move |i| {
        cond(if i % 2 == 0 {
            (i / 2) % n_pre
        } else {
            n_pre + i / 2
        })
    });
    let r = drive_writes(&rt, &engine, n_cond, make);
    assert!(
        r.iter()
            .any(|(k, v)| k == "accepted" && *v == (n_cond / 2).to_string()),
        "wrong accept count"
    );
    emit(
        "3 conditional: create-if-absent users+by_id, 50% rejected",
        kind,
        r,
    );
    engine.quiesce();

    for mode in [
        ReadMode::Direct,
        ReadMode::TxnPerRead,
        ReadMode::TxnPerChunk,
    ] {
        let phase = format!("4 point reads, 64 tasks on 2 workers: {}", mode.label());
        if kind.starts_with("redb") && mode == ReadMode::Direct {
            emit(&phase, kind, row!["reads" => "n/a"]);
            continue;
        }
        eprintln!("[{kind}] 4: reads, {}", mode.label());
        emit(
            &phase,
            kind,
            drive_reads(&rt, &engine, mode, n_read, n_write),
        );
    }
    engine.flush_memtables()?;
    for (mode, label) in [
        (
            engine.default_read_mode(),
            "per-read path (fjall Keyspace::get | redb txn per read)",
        ),
        (ReadMode::TxnPerChunk, "per 100 reads"),
    ] {
        eprintln!("[{kind}] 4b: reads after memtable flush, {label}");
        emit(
            &format!("4b point reads after fjall memtable flush: {label}"),
            kind,
            drive_reads(&rt, &engine, mode, n_read, n_write),
        );
    }
    engine.quiesce();

    eprintln!("[{kind}] 5: mixed {mixed_secs}s");
    emit(
        "5 mixed: 32 writer tasks (overwrite) + 64 reader tasks",
        kind,
        drive_mixed(&rt, &engine, mixed_secs, n_write),
    );

    drop(rt);
    drop(engine); // fjall: persists + joins its workers; redb: closes the file
    let (du, du_app) = (du_kib(dir, false), du_kib(dir, true));
    let t = Instant::now();
    let engine = open_engine(kind, dir)?;
    let reopen_ms = t.elapsed().as_secs_f64() * 1e3;
    let (kv, us, bi) = (
        engine.count(Tbl::Kv)?,
        engine.count(Tbl::Users)?,
        engine.count(Tbl::ById)?,
    );
    assert_eq!(
        (kv, us, bi),
        (n_write, n_pre + n_cond / 2, n_pre + n_cond / 2),
        "post-reopen counts"
    );
    drop(engine);
    emit(
        "6 disk (du after clean close) + reopen",
        kind,
        row!["du_KiB" => du, "apparent_KiB" => du_app,
        "reopen_ms" => format!("{reopen_ms:.0}"), "kv/users/by_id" => format!("{kv}/{us}/{bi}"), "peak_rss_MiB" => rusage(libc::RUSAGE_SELF).1 / 1024],
    );
    Ok(())
}
