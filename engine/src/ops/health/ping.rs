//! [`Ping`]: a no-op that makes one round trip through a shard actor
//! (benchmarks, probes). Each ping takes a user partition of its own.

use std::sync::atomic::Ordering;

use portcullis_storage::UserId;

use crate::core::Engine;
use crate::ops::Operation;
use crate::responder::Responder;
use crate::shard::PartitionKey;

/// A round trip through a shard.
pub struct Ping;

impl Operation for Ping {
    type Reply = ();

    fn submit(self, engine: &Engine, reply: Responder<()>) {
        let n = engine.core.ping_counter.fetch_add(1, Ordering::Relaxed);
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&n.to_le_bytes());
        engine
            .core
            .dispatch(PartitionKey::User(UserId(id)), reply, |_| async { Ok(()) });
    }
}
