//! store-choice: fjall vs redb for Portcullis (group-commit writer thread + direct reads on tokio workers).
//! The parent runs an fdatasync probe, then each engine in a fresh child process (`--child <engine>`) with a
//! fresh data dir, and prints one table per phase. Engines:
//!   fjall-grp: ONE WriteBatch per group, `.durability(Some(PersistMode::SyncData))` (journal write + fdatasync
//!              happen before the memtable insert, so readers never see non-durable data)
//!   fjall-req: one WriteBatch per request (no durability) + ONE `db.persist(PersistMode::SyncData)` per group
//!   redb:      one WriteTransaction per group, Durability::Immediate;  redb-qr: same + set_quick_repair(true)
//! Usage: store-choice [--scale F] [--mixed-secs N] [--engines a,b,..] [--keep]
//!
//! This is the measurement behind the embedded store's choice of fjall (see
//! ARCHITECTURE.md). It is a standalone measurement program: it calls libc
//! for per-thread CPU clocks and fdatasync, and favours terseness.
//!
//! Modules next to this file: data generation (`data.rs`), CPU and I/O
//! measurements (`stats.rs`), the engines (`engines.rs`), the group-commit
//! writer (`committer.rs`) and the phases (`phases.rs`).

#![allow(
    unsafe_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_methods
)]

use std::time::Instant;
use std::{path::Path, process::Command};

type R<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;
type Row = Vec<(String, String)>;
macro_rules! row { ($($k:expr => $v:expr),* $(,)?) => { vec![$(($k.to_string(), $v.to_string())),*] } }

const CHANNEL_CAP: usize = 4096;
const MAX_GROUP: usize = 1024;
const VAL_LEN: usize = 300;
const CACHE_BYTES: usize = 128 << 20; // same cache budget for both engines (fjall default 32 MiB, redb 1 GiB)
const WRITE_TASKS: u64 = 64;
const READ_TASKS: u64 = 64;
const READ_CHUNK: usize = 100;
const MIXED_WRITERS: u64 = 32;
const MIXED_READERS: u64 = 64; // 2 readers per writer
const SPACE_KV: u64 = 1;
const SPACE_EMAIL: u64 = 2;
const SPACE_UID: u64 = 3;

mod committer;
mod data;
mod engines;
mod phases;
mod stats;

use crate::phases::run_child;
use crate::stats::{mean, pct};

fn fdatasync_probe(dir: &Path) -> Vec<(String, Row)> {
    use std::os::unix::{fs::FileExt, io::AsRawFd};
    [("append 100B + fdatasync", true), ("overwrite 100B @0 + fdatasync", false)].into_iter().map(|(label, append)| {
        let p = dir.join("fsync-probe");
        let _ = std::fs::remove_file(&p);
        let f = std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&p).expect("probe file");
        if !append { f.write_at(&[0u8; 4096], 0).unwrap(); f.sync_all().unwrap(); }
        let mut l: Vec<u64> = (0..500u64).map(|i| {
            let s = Instant::now();
            f.write_at(&[0x5a; 100], if append { i * 100 } else { 0 }).unwrap();
            assert_eq!(unsafe { libc::fdatasync(f.as_raw_fd()) }, 0);
            s.elapsed().as_nanos() as u64
        }).collect();
        l.sort_unstable();
        let _ = std::fs::remove_file(&p);
        (label.to_string(), row!["n" => 500, "mean_us" => format!("{:.0}", mean(&l) / 1e3), "p50_us" => pct(&l, 50.0) / 1000,
            "p99_us" => pct(&l, 99.0) / 1000, "max_us" => l[499] / 1000])
    }).collect()
}
fn print_table(title: &str, rows: &[(String, Row)]) {
    let mut cols: Vec<String> = vec!["engine".into()];
    for (k, _) in rows.iter().flat_map(|r| &r.1) {
        if !cols.contains(k) {
            cols.push(k.clone());
        }
    }
    let mut grid = vec![cols.clone()];
    for (name, r) in rows {
        grid.push(
            cols.iter()
                .map(|c| {
                    if c == "engine" {
                        name.clone()
                    } else {
                        r.iter()
                            .find(|(k, _)| k == c)
                            .map_or("-".into(), |(_, v)| v.clone())
                    }
                })
                .collect(),
        );
    }
    let w: Vec<usize> = (0..cols.len())
        .map(|i| grid.iter().map(|l| l[i].len()).max().unwrap())
        .collect();
    println!("\n## {title}");
    for (n, line) in grid.iter().enumerate() {
        let cells: Vec<String> = line
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == 0 {
                    format!("{c:<0$}", w[i])
                } else {
                    format!("{c:>0$}", w[i])
                }
            })
            .collect();
        println!("| {} |", cells.join(" | "));
        if n == 0 {
            println!(
                "|{}|",
                w.iter()
                    .map(|w| "-".repeat(w + 2))
                    .collect::<Vec<_>>()
                    .join("|")
            );
        }
    }
}
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let get = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let scale: f64 = get("--scale").and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let mixed_secs: u64 = get("--mixed-secs")
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    if let Some(kind) = get("--child") {
        if let Err(e) = run_child(
            &kind,
            Path::new(&get("--dir").expect("--dir")),
            scale,
            mixed_secs,
        ) {
            eprintln!("[{kind}] error: {e}");
            std::process::exit(1);
        }
        return;
    }
    let engines = get("--engines").unwrap_or("fjall-grp,fjall-req,redb,redb-qr".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let base = std::env::temp_dir().join(format!("store-choice-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&base).expect("create base dir");
    let osrel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!(
        "# store-choice scale={scale} mixed_secs={mixed_secs} cores={} kernel={} data={}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        osrel.trim(),
        base.display()
    );
    let before = fdatasync_probe(&base);
    let mut phases: Vec<(String, Vec<(String, Row)>)> = Vec::new();
    for e in engines.split(',') {
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--child", e, "--dir"])
            .arg(base.join(e))
            .args([
                "--scale",
                &scale.to_string(),
                "--mixed-secs",
                &mixed_secs.to_string(),
            ])
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("spawn child");
        if !out.status.success() {
            eprintln!("child {e} failed: {}", out.status);
        }
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() < 3 || f[0] != "@R" {
                continue;
            }
            let row: Row = f[3..]
                .iter()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.into(), v.into()))
                .collect();
            match phases.iter_mut().find(|(p, _)| p == f[1]) {
                Some((_, rows)) => rows.push((f[2].into(), row)),
                None => phases.push((f[1].into(), vec![(f[2].into(), row)])),
            }
        }
    }
    let after = fdatasync_probe(&base);
    print_table(
        "1 fdatasync probe, 500 iterations (before engines)",
        &before,
    );
    for (phase, rows) in &phases {
        print_table(phase, rows);
    }
    print_table("1 fdatasync probe (after engines)", &after);
    if !args.iter().any(|a| a == "--keep") {
        let _ = std::fs::remove_dir_all(&base);
    }
}
