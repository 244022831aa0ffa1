//! The engines under test behind one trait: the operations, the read
//! modes, fjall (per-group or per-request durability) and redb.

use crate::{CACHE_BYTES, R};
use fjall::Readable as _;
use redb::{ReadableDatabase as _, ReadableTable as _, ReadableTableMetadata as _};
use std::time::{Duration, Instant};
use std::{collections::HashSet, path::Path, sync::Arc};
use tokio::sync::oneshot;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tbl {
    Kv,
    Users,
    ById,
}
pub(crate) enum Op {
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
pub(crate) struct Req {
    pub(crate) op: Op,
    pub(crate) ack: oneshot::Sender<bool>,
}
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadMode {
    Direct,
    TxnPerRead,
    TxnPerChunk,
}
impl ReadMode {
    pub(crate) fn label(self) -> &'static str {
        match self {
            ReadMode::Direct => "fjall Keyspace::get (no snapshot); redb n/a",
            ReadMode::TxnPerRead => "snapshot (fjall) / begin_read+open_table (redb) per read",
            ReadMode::TxnPerChunk => "one snapshot / read txn per 100 reads",
        }
    }
}
pub(crate) trait Engine: Send + Sync + 'static {
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
pub(crate) fn open_engine(kind: &str, dir: &Path) -> R<Arc<dyn Engine>> {
    Ok(match kind {
        "fjall-grp" => Arc::new(Fjall::open(dir, true)?),
        "fjall-req" => Arc::new(Fjall::open(dir, false)?),
        "redb" => Arc::new(Redb::open(dir, false)?),
        "redb-qr" => Arc::new(Redb::open(dir, true)?),
        other => return Err(format!("unknown engine {other}").into()),
    })
}
