//! Shard actors: each owns a hash range of partitions (normalized emails and
//! user ids) and serializes every operation on one partition.
//!
//! A shard is a keyed executor. An operation arrives as [`ShardMsg::Run`]
//! carrying its partition key and its (not yet started) future. If no
//! operation of that partition is running, the shard spawns it on the tokio
//! runtime at once; otherwise it queues it behind the running one. When an
//! operation ends, even by panic or timeout, a [`ShardMsg::Done`] releases the
//! partition and starts the next queued operation. So operations of one user
//! never overlap, while operations of different users on one shard run
//! concurrently (a login waiting 20 ms for its hash holds only its own email).
//!
//! Admission is bounded: [`ShardRef::submit`] counts operations admitted and
//! not finished, and refuses beyond the shard's capacity (the edge answers 503
//! `overloaded`). The actor's own mailbox therefore never holds more than
//! `capacity` runs (plus their `Done`s).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use portcullis_storage::UserId;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::runtime::Handle;

use crate::clock::Stopwatch;

/// An operation's future, started by the shard when its partition is free.
pub(crate) type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// What a shard serializes on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum PartitionKey {
    /// The email partition: a normalized email address.
    Email(String),
    /// The user partition.
    User(UserId),
}

impl PartitionKey {
    /// The shard owning this partition among `n`.
    pub(crate) fn shard_of(&self, n: usize) -> usize {
        // `DefaultHasher::new()` uses fixed keys: every call in this process
        // agrees (partitioning is per process; pods do not share shards).
        let mut h = std::hash::DefaultHasher::new();
        self.hash(&mut h);
        (h.finish() % n.max(1) as u64) as usize
    }
}

/// Messages of a shard actor.
pub(crate) enum ShardMsg {
    /// Run `task` when `key` is free.
    Run {
        /// The partition.
        key: PartitionKey,
        /// The operation.
        task: Task,
    },
    /// The running operation of `key` ended.
    Done {
        /// The partition.
        key: PartitionKey,
    },
}

/// Start-up arguments of a shard.
pub(crate) struct ShardArgs {
    /// Runtime on which operations are spawned.
    pub handle: Handle,
    /// Admitted-and-unfinished counter shared with the [`ShardRef`].
    pub depth: Arc<AtomicUsize>,
    /// Longest time an operation may hold its partition.
    pub operation_timeout: Duration,
}

/// State of a shard, built in `pre_start`.
pub(crate) struct ShardState {
    handle: Handle,
    depth: Arc<AtomicUsize>,
    operation_timeout: Duration,
    /// Partitions with a running operation, and what waits behind it (with
    /// when it started waiting).
    busy: HashMap<PartitionKey, VecDeque<(Task, Stopwatch)>>,
}

/// The shard actor. Holds no mutable state itself.
pub(crate) struct ShardActor {
    /// Shard number (for logs).
    pub index: usize,
}

impl Actor for ShardActor {
    type Msg = ShardMsg;
    type State = ShardState;
    type Arguments = ShardArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<ShardMsg>,
        args: ShardArgs,
    ) -> Result<ShardState, ActorProcessingErr> {
        Ok(ShardState {
            handle: args.handle,
            depth: args.depth,
            operation_timeout: args.operation_timeout,
            busy: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<ShardMsg>,
        msg: ShardMsg,
        state: &mut ShardState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ShardMsg::Run { key, task } => match state.busy.get_mut(&key) {
                Some(queue) => queue.push_back((task, Stopwatch::start())),
                None => {
                    state.busy.insert(key.clone(), VecDeque::new());
                    self.start(&myself, state, key, task);
                }
            },
            ShardMsg::Done { key } => {
                // An operation that waited its whole timeout in the queue is
                // dropped unstarted: its responder answers `unavailable`.
                let timeout = state.operation_timeout;
                let next = loop {
                    match state.busy.get_mut(&key).and_then(VecDeque::pop_front) {
                        Some((task, queued)) if queued.elapsed() >= timeout => {
                            drop(task);
                            state.depth.fetch_sub(1, Ordering::AcqRel);
                            tracing::warn!(
                                shard = self.index,
                                "operation expired in its partition queue"
                            );
                        }
                        other => break other,
                    }
                };
                match next {
                    Some((task, _)) => self.start(&myself, state, key, task),
                    None => {
                        state.busy.remove(&key);
                    }
                }
            }
        }
        Ok(())
    }
}

impl ShardActor {
    fn start(
        &self,
        myself: &ActorRef<ShardMsg>,
        state: &ShardState,
        key: PartitionKey,
        task: Task,
    ) {
        let guard = DoneGuard {
            shard: myself.clone(),
            key: Some(key),
            depth: state.depth.clone(),
        };
        let timeout = state.operation_timeout;
        let index = self.index;
        state.handle.spawn(async move {
            let _guard = guard;
            if tokio::time::timeout(timeout, task).await.is_err() {
                tracing::error!(
                    shard = index,
                    "operation exceeded the operation timeout and was abandoned"
                );
            }
        });
    }
}

/// Releases the partition when an operation ends, however it ends.
struct DoneGuard {
    shard: ActorRef<ShardMsg>,
    key: Option<PartitionKey>,
    depth: Arc<AtomicUsize>,
}

impl Drop for DoneGuard {
    fn drop(&mut self) {
        self.depth.fetch_sub(1, Ordering::AcqRel);
        if let Some(key) = self.key.take() {
            // Fails only when the shard has stopped (shutdown): nothing to release then.
            let _ = self.shard.cast(ShardMsg::Done { key });
        }
    }
}

/// Why a shard refused an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The shard is at capacity.
    Full,
    /// The shard has stopped.
    Stopped,
}

/// A handle to one shard, with its admission counter.
#[derive(Clone)]
pub(crate) struct ShardRef {
    actor: ActorRef<ShardMsg>,
    depth: Arc<AtomicUsize>,
    capacity: usize,
}

impl ShardRef {
    /// Reserves room for one operation, or refuses at once when the shard is
    /// at capacity.
    pub(crate) fn admit(&self) -> Result<Admission<'_>, Refused> {
        if self.depth.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.depth.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::Full);
        }
        Ok(Admission {
            shard: self,
            used: false,
        })
    }

    /// Reserves room for one operation that runs outside the partition
    /// order (see `Core::dispatch_unordered`), or refuses at once when the
    /// shard is at capacity. The room is released when the permit drops, so
    /// such operations count toward the same bound and the same drain.
    pub(crate) fn permit(&self) -> Result<Permit, Refused> {
        if self.depth.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.depth.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::Full);
        }
        Ok(Permit {
            depth: self.depth.clone(),
        })
    }

    /// Admits `task` for `key`, or refuses at once.
    #[cfg(test)]
    pub(crate) fn submit(&self, key: PartitionKey, task: Task) -> Result<(), Refused> {
        self.admit()?.send(key, task)
    }

    /// Operations admitted and not finished.
    pub(crate) fn depth(&self) -> usize {
        self.depth.load(Ordering::Acquire)
    }
}

/// Room for one operation in a shard; released if not used.
pub(crate) struct Admission<'a> {
    shard: &'a ShardRef,
    used: bool,
}

impl Admission<'_> {
    /// Hands the operation to the shard.
    pub(crate) fn send(mut self, key: PartitionKey, task: Task) -> Result<(), Refused> {
        if self.shard.actor.cast(ShardMsg::Run { key, task }).is_err() {
            return Err(Refused::Stopped);
        }
        self.used = true;
        Ok(())
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if !self.used {
            self.shard.depth.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Room in a shard for one operation running outside the partition order.
pub(crate) struct Permit {
    depth: Arc<AtomicUsize>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.depth.fetch_sub(1, Ordering::AcqRel);
    }
}

/// All shards.
pub(crate) struct Shards {
    shards: Vec<ShardRef>,
    joins: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Shards {
    /// Spawns `n` shard actors on `handle`.
    pub(crate) async fn spawn(
        n: usize,
        capacity: usize,
        operation_timeout: Duration,
        handle: &Handle,
    ) -> Result<Shards, ractor::SpawnErr> {
        let mut shards = Vec::with_capacity(n);
        let mut joins = Vec::with_capacity(n);
        for index in 0..n {
            let depth = Arc::new(AtomicUsize::new(0));
            let args = ShardArgs {
                handle: handle.clone(),
                depth: depth.clone(),
                operation_timeout,
            };
            let (actor, join) = Actor::spawn(None, ShardActor { index }, args).await?;
            shards.push(ShardRef {
                actor,
                depth,
                capacity,
            });
            joins.push(join);
        }
        Ok(Shards {
            shards,
            joins: std::sync::Mutex::new(joins),
        })
    }

    /// The shard owning `key`.
    pub(crate) fn route(&self, key: &PartitionKey) -> &ShardRef {
        &self.shards[key.shard_of(self.shards.len())]
    }

    /// All shards, for metrics and draining.
    pub(crate) fn all(&self) -> &[ShardRef] {
        &self.shards
    }

    /// Stops every shard and waits for them.
    pub(crate) async fn stop(&self) {
        for s in &self.shards {
            s.actor.stop(None);
        }
        let joins = std::mem::take(
            &mut *self
                .joins
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for j in joins {
            let _ = j.await;
        }
    }
}

#[cfg(test)]
mod tests;
