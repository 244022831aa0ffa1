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
#![allow(
    unsafe_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_methods
)]
use fjall::Readable as _;
use redb::{ReadableDatabase as _, ReadableTable as _, ReadableTableMetadata as _};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};
use std::{
    collections::HashSet, fmt::Write as _, io::Write as _, path::Path, process::Command, sync::Arc,
};
use tokio::sync::{mpsc, oneshot};

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

// ------------------------------------------------------------------ data generation
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
/// 16-byte random-looking key, unique per (space, i).
fn key_of(space: u64, i: u64) -> [u8; 16] {
    let a = splitmix((space << 56) ^ i);
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&a.to_be_bytes());
    k[8..].copy_from_slice(&splitmix(a ^ 0x5555_AAAA_5555_AAAA).to_be_bytes());
    k
}
/// ~300-byte JSON-ish user record: field names + argon2-like hash + random padding (about half incompressible).
fn make_value(key: &[u8; 16], i: u64, ver: u64) -> Vec<u8> {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut r = splitmix(i ^ ver.rotate_left(32) ^ 0xABCD_EF01);
    let mut rnd = |n: usize| -> String {
        (0..n)
            .map(|_| {
                r = splitmix(r);
                B64[(r & 63) as usize] as char
            })
            .collect()
    };
    let (salt, hash) = (rnd(22), rnd(43));
    let mut s = String::with_capacity(VAL_LEN + 8);
    s.push_str("{\"id\":\"");
    key.iter().for_each(|b| {
        let _ = write!(s, "{b:02x}");
    });
    let _ = write!(
        s,
        "\",\"email\":\"user{i}@example.com\",\"pw\":\"$argon2id$v=19$m=19456,t=2,p=1${salt}${hash}\",\
        \"created\":{},\"ver\":{ver},\"roles\":[\"user\"],\"mfa\":false,\"dev\":\"",
        1_700_000_000 + i
    );
    let pad = rnd((VAL_LEN - 2).saturating_sub(s.len()));
    s.push_str(&pad);
    s.push_str("\"}");
    let mut v = s.into_bytes();
    v.truncate(VAL_LEN);
    v
}

// ------------------------------------------------------------------ CPU / IO / stats helpers
fn rusage(who: libc::c_int) -> (u64, i64) {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut ru) };
    let us = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64;
    (us(ru.ru_utime) + us(ru.ru_stime), ru.ru_maxrss as i64) // (cpu µs, max RSS KiB)
}
fn clk_tck() -> u64 {
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64
}
/// utime+stime (fields 14+15 of /proc/self/stat), clock ticks -> µs.
fn proc_stat_us() -> u64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let f: Vec<u64> = s[s.rfind(')').map_or(0, |p| p + 2)..]
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    (f.get(11).unwrap_or(&0) + f.get(12).unwrap_or(&0)) * 1_000_000 / clk_tck()
}
/// System-wide (busy, steal) µs from the "cpu" line of /proc/stat: noise from other processes / the hypervisor.
fn sys_cpu_us() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = s
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let g = |i: usize| f.get(i).copied().unwrap_or(0); // user nice system idle iowait irq softirq steal
    (
        (g(0) + g(1) + g(2) + g(5) + g(6) + g(7)) * 1_000_000 / clk_tck(),
        g(7) * 1_000_000 / clk_tck(),
    )
}
/// Bytes this process caused to be written to storage (/proc/self/io write_bytes).
fn io_write_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}
#[derive(Clone, Copy)]
struct Cpu {
    rusage_us: u64,
    proc_us: u64,
    busy_us: u64,
    steal_us: u64,
    wbytes: u64,
}
fn cpu_now() -> Cpu {
    let (busy_us, steal_us) = sys_cpu_us();
    Cpu {
        rusage_us: rusage(libc::RUSAGE_SELF).0,
        proc_us: proc_stat_us(),
        busy_us,
        steal_us,
        wbytes: io_write_bytes(),
    }
}
/// Per-op CPU (getrusage and /proc), disk bytes, and noise: other processes' CPU and steal, in % of one core.
fn cpu_cols(c0: Cpu, c1: Cpu, wall: f64, n: f64, unit: &str) -> Row {
    let ours = (c1.proc_us - c0.proc_us) as f64;
    let steal = (c1.steal_us - c0.steal_us) as f64;
    let busy = (c1.busy_us - c0.busy_us) as f64;
    row![format!("cpu_us/{unit}") => format!("{:.1}", (c1.rusage_us - c0.rusage_us) as f64 / n),
         format!("cpu_us/{unit}(proc)") => format!("{:.1}", ours / n),
         format!("disk_KiB/{unit}") => format!("{:.2}", (c1.wbytes - c0.wbytes) as f64 / 1024.0 / n),
         "other_cpu%" => format!("{:.0}", (busy - steal - ours).max(0.0) / 1e4 / wall), "steal%" => format!("{:.0}", steal / 1e4 / wall)]
}
fn pct(sorted: &[u64], p: f64) -> u64 {
    sorted
        .get(((sorted.len() as f64 * p / 100.0) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0)
}
fn mean(v: &[u64]) -> f64 {
    v.iter().sum::<u64>() as f64 / v.len().max(1) as f64
}

// ------------------------------------------------------------------ engines
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tbl {
    Kv,
    Users,
    ById,
}
enum Op {
    /// blind durable put
    Put {
        table: Tbl,
        key: [u8; 16],
        val: Vec<u8>,
    },
    /// read users[key]; if absent insert users[key]=val AND by_id[key2]=val2 atomically, else reject
    CreateIfAbsent {
        key: [u8; 16],
        val: Vec<u8>,
        key2: [u8; 16],
        val2: Vec<u8>,
    },
}
struct Req {
    op: Op,
    ack: oneshot::Sender<bool>,
}
#[derive(Clone, Copy, PartialEq, Eq)]
enum ReadMode {
    Direct,
    TxnPerRead,
    TxnPerChunk,
}
impl ReadMode {
    fn label(self) -> &'static str {
        match self {
            ReadMode::Direct => "fjall Keyspace::get (no snapshot); redb n/a",
            ReadMode::TxnPerRead => "snapshot (fjall) / begin_read+open_table (redb) per read",
            ReadMode::TxnPerChunk => "one snapshot / read txn per 100 reads",
        }
    }
}
trait Engine: Send + Sync + 'static {
    /// Apply all ops, make them durable with ONE fsync-class call, push one accepted-flag per op.
    fn commit_group(&self, ops: &[Op], out: &mut Vec<bool>) -> R<()>;
    /// Point-get every key in kv; returns how many were found.
    fn read_chunk(&self, mode: ReadMode, keys: &[[u8; 16]]) -> R<u64>;
    fn default_read_mode(&self) -> ReadMode {
        ReadMode::TxnPerRead
    }
    fn count(&self, t: Tbl) -> R<u64>;
    /// fjall: flush memtables to tables (steady state of a long-running server) / wait for background work.
    fn flush_memtables(&self) -> R<()> {
        Ok(())
    }
    fn quiesce(&self) {}
}

struct Fjall {
    db: fjall::Database,
    kv: fjall::Keyspace,
    users: fjall::Keyspace,
    by_id: fjall::Keyspace,
    per_group: bool,
}
impl Fjall {
    fn open(dir: &Path, per_group: bool) -> R<Self> {
        let db = fjall::Database::builder(dir)
            .cache_size(CACHE_BYTES as u64)
            .manual_journal_persist(true)
            .open()?;
        let opts = || fjall::KeyspaceCreateOptions::default().manual_journal_persist(true);
        let (kv, users, by_id) = (
            db.keyspace("kv", opts)?,
            db.keyspace("users", opts)?,
            db.keyspace("by_id", opts)?,
        );
        Ok(Self {
            db,
            kv,
            users,
            by_id,
            per_group,
        })
    }
    fn ks(&self, t: Tbl) -> &fjall::Keyspace {
        match t {
            Tbl::Kv => &self.kv,
            Tbl::Users => &self.users,
            Tbl::ById => &self.by_id,
        }
    }
    /// Adds `op` to `b` if it is accepted. `pending` = keys added earlier in this (not yet applied) batch.
    fn stage(
        &self,
        b: &mut fjall::OwnedWriteBatch,
        op: &Op,
        pending: &mut HashSet<[u8; 16]>,
    ) -> R<bool> {
        match op {
            Op::Put { table, key, val } => {
                b.insert(self.ks(*table), key.as_slice(), val.as_slice())
            }
            Op::CreateIfAbsent {
                key,
                val,
                key2,
                val2,
            } => {
                if pending.contains(key) || self.users.get(key)?.is_some() {
                    return Ok(false);
                }
                b.insert(&self.users, key.as_slice(), val.as_slice());
                b.insert(&self.by_id, key2.as_slice(), val2.as_slice());
                pending.insert(*key);
            }
        }
        Ok(true)
    }
}
impl Engine for Fjall {
    fn commit_group(&self, ops: &[Op], out: &mut Vec<bool>) -> R<()> {
        let mut pending = HashSet::new();
        if self.per_group {
            // WriteBatch::commit: journal write + fdatasync (under the journal mutex) THEN memtable insert + publish.
            let mut b = self
                .db
                .batch()
                .durability(Some(fjall::PersistMode::SyncData));
            for op in ops {
                out.push(self.stage(&mut b, op, &mut pending)?);
            }
            b.commit()?; // empty batch (all rejected) is a no-op: no fsync
        } else {
            // each batch is in the memtable (visible to readers!) before the persist below
            let mut wrote = false;
            for op in ops {
                let mut b = self.db.batch();
                out.push(self.stage(&mut b, op, &mut pending)?);
                wrote |= !b.is_empty();
                b.commit()?;
            }
            if wrote {
                self.db.persist(fjall::PersistMode::SyncData)?;
            } // holds the journal mutex during fdatasync
        }
        Ok(())
    }
    fn read_chunk(&self, mode: ReadMode, keys: &[[u8; 16]]) -> R<u64> {
        let mut found = 0;
        let snap = (mode == ReadMode::TxnPerChunk).then(|| self.db.snapshot());
        for k in keys {
            let v = match (mode, &snap) {
                (ReadMode::Direct, _) => self.kv.get(k)?,
                (_, Some(s)) => s.get(&self.kv, k)?,
                _ => self.db.snapshot().get(&self.kv, k)?,
            };
            found += v.map_or(0, |v| u64::from(!v.is_empty()));
        }
        Ok(found)
    }
    fn default_read_mode(&self) -> ReadMode {
        ReadMode::Direct
    }
    fn count(&self, t: Tbl) -> R<u64> {
        Ok(self.ks(t).len()? as u64)
    }
    fn flush_memtables(&self) -> R<()> {
        for ks in [&self.kv, &self.users, &self.by_id] {
            ks.rotate_memtable_and_wait()?;
        } // #[doc(hidden)] helper
        self.quiesce();
        Ok(())
    }
    fn quiesce(&self) {
        let t0 = Instant::now();
        while (self.db.outstanding_flushes() > 0 || self.db.active_compactions() > 0)
            && t0.elapsed().as_secs() < 30
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

type RTable = redb::TableDefinition<'static, &'static [u8], &'static [u8]>;
const KV: RTable = redb::TableDefinition::new("kv");
const USERS: RTable = redb::TableDefinition::new("users");
const BY_ID: RTable = redb::TableDefinition::new("by_id");
fn rdef(t: Tbl) -> RTable {
    match t {
        Tbl::Kv => KV,
        Tbl::Users => USERS,
        Tbl::ById => BY_ID,
    }
}
struct Redb {
    db: redb::Database,
    quick_repair: bool,
}
impl Redb {
    fn open(dir: &Path, quick_repair: bool) -> R<Self> {
        std::fs::create_dir_all(dir)?;
        let db = redb::Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(dir.join("portcullis.redb"))?;
        let w = db.begin_write()?;
        for t in [KV, USERS, BY_ID] {
            w.open_table(t)?;
        }
        w.commit()?;
        Ok(Self { db, quick_repair })
    }
}
impl Engine for Redb {
    fn commit_group(&self, ops: &[Op], out: &mut Vec<bool>) -> R<()> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(redb::Durability::Immediate)?; // the default; the only other level is Durability::None
        txn.set_quick_repair(self.quick_repair);
        let mut wrote = false;
        {
            let (mut kv, mut users, mut by_id) = (None, None, None); // tables are opened lazily
            macro_rules! tbl {
                ($slot:ident, $def:expr) => {{
                    if $slot.is_none() {
                        $slot = Some(txn.open_table($def)?);
                    }
                    $slot.as_mut().unwrap()
                }};
            }
            for op in ops {
                let ok = match op {
                    Op::Put { table, key, val } => {
                        let t = match table {
                            Tbl::Kv => tbl!(kv, KV),
                            Tbl::Users => tbl!(users, USERS),
                            Tbl::ById => tbl!(by_id, BY_ID),
                        };
                        t.insert(key.as_slice(), val.as_slice())?;
                        true
                    }
                    Op::CreateIfAbsent {
                        key,
                        val,
                        key2,
                        val2,
                    } => {
                        // a write txn sees its own uncommitted writes (earlier requests of this group)
                        let free = tbl!(users, USERS).get(key.as_slice())?.is_none();
                        if free {
                            tbl!(users, USERS).insert(key.as_slice(), val.as_slice())?;
                            tbl!(by_id, BY_ID).insert(key2.as_slice(), val2.as_slice())?;
                        }
                        free
                    }
                };
                wrote |= ok;
                out.push(ok);
            }
        }
        // Immediate: dirty pages + commit slot written, fdatasync, THEN the new root becomes visible to begin_read
        if wrote {
            txn.commit()?
        } else {
            txn.abort()?
        }
        Ok(())
    }
    fn read_chunk(&self, mode: ReadMode, keys: &[[u8; 16]]) -> R<u64> {
        let mut found = 0;
        let mut shared = None;
        if mode == ReadMode::TxnPerChunk {
            let tx = self.db.begin_read()?;
            shared = Some(tx.open_table(KV)?);
        }
        for k in keys {
            let v = match &shared {
                Some(t) => t.get(k.as_slice())?,
                None => self.db.begin_read()?.open_table(KV)?.get(k.as_slice())?, // guard keeps the txn alive
            };
            found += v.map_or(0, |v| u64::from(!v.value().is_empty()));
        }
        Ok(found)
    }
    fn count(&self, t: Tbl) -> R<u64> {
        Ok(self.db.begin_read()?.open_table(rdef(t))?.len()?)
    }
}
fn open_engine(kind: &str, dir: &Path) -> R<Arc<dyn Engine>> {
    Ok(match kind {
        "fjall-grp" => Arc::new(Fjall::open(dir, true)?),
        "fjall-req" => Arc::new(Fjall::open(dir, false)?),
        "redb" => Arc::new(Redb::open(dir, false)?),
        "redb-qr" => Arc::new(Redb::open(dir, true)?),
        other => return Err(format!("unknown engine {other}").into()),
    })
}

// ------------------------------------------------------------------ committer (group commit)
#[derive(Default)]
struct CommitStats {
    groups: u64,
    ops: u64,
    max_group: usize,
    commit_ns: u64,
    thread_cpu_us: u64,
}
fn spawn_committer(
    engine: Arc<dyn Engine>,
    mut rx: mpsc::Receiver<Req>,
) -> std::thread::JoinHandle<CommitStats> {
    std::thread::Builder::new()
        .name("committer".into())
        .spawn(move || {
            let c0 = rusage(libc::RUSAGE_THREAD).0;
            let mut st = CommitStats::default();
            let (mut ops, mut acks, mut out) = (
                Vec::with_capacity(MAX_GROUP),
                Vec::with_capacity(MAX_GROUP),
                Vec::with_capacity(MAX_GROUP),
            );
            while let Some(first) = rx.blocking_recv() {
                let mut next = Some(first);
                while let Some(r) = next.take() {
                    ops.push(r.op);
                    acks.push(r.ack);
                    if ops.len() < MAX_GROUP {
                        next = rx.try_recv().ok();
                    } // drain what is already queued
                }
                let t = Instant::now();
                out.clear();
                engine
                    .commit_group(&ops, &mut out)
                    .expect("commit_group failed");
                st.commit_ns += t.elapsed().as_nanos() as u64;
                (st.groups, st.ops, st.max_group) = (
                    st.groups + 1,
                    st.ops + ops.len() as u64,
                    st.max_group.max(ops.len()),
                );
                ops.clear();
                for (ack, ok) in acks.drain(..).zip(out.drain(..)) {
                    let _ = ack.send(ok);
                }
            }
            st.thread_cpu_us = rusage(libc::RUSAGE_THREAD).0 - c0;
            st
        })
        .expect("spawn committer")
}

// ------------------------------------------------------------------ phases
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

fn run_child(kind: &str, dir: &Path, scale: f64, mixed_secs: u64) -> R<()> {
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

// ------------------------------------------------------------------ fdatasync probe, tables, main
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
