//! The group-commit writer thread: it drains the request channel into
//! groups and commits each with one fsync-class call.

use crate::MAX_GROUP;
use crate::engines::{Engine, Req};
use crate::stats::rusage;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

#[derive(Default)]
pub(crate) struct CommitStats {
    pub(crate) groups: u64,
    pub(crate) ops: u64,
    pub(crate) max_group: usize,
    pub(crate) commit_ns: u64,
    pub(crate) thread_cpu_us: u64,
}
pub(crate) fn spawn_committer(
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
