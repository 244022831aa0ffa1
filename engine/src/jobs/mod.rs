//! The engine's background jobs, every one listed in [`spawn_all`], each in
//! its own file, each run by [`every`] until the engine's
//! [`Shutdown`](crate::shutdown::Shutdown) begins.
//!
//! | job | period | what |
//! | --- | --- | --- |
//! | `keys` | `PORTCULLIS_SIGNING_KEYS_REREAD` with a key directory, else 10 min | rotate, publish and retire signing keys |
//! | `purge` | `PORTCULLIS_PURGE_INTERVAL` | delete expired sessions (embedded store) |
//! | `samples` | 1 s | shard mailbox depths, process CPU |
//! | `stores` | 5 s | store availability and nodes; sessions estimate each minute |
//! | `reseal` | `PORTCULLIS_DATA_KEY_RESEAL_INTERVAL` | move secrets to the newest data key |
//! | `mailer` | `PORTCULLIS_MAILER_POLL` | deliver due outbox messages |
//! | `bringup` | until connected | connect a store start-up could not reach |

pub(crate) mod bringup;
mod keys;
pub mod mailer;
mod purge;
mod reseal;
mod samples;
mod stores;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::core::Core;

/// When a job first runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// At once, then every period.
    Now,
    /// After one period.
    AfterPeriod,
}

/// Starts every background job (and the connector of stores start-up could
/// not reach, if any).
pub(crate) fn spawn_all(core: &Arc<Core>, pending: bringup::PendingStores) -> Vec<JoinHandle<()>> {
    let mut jobs = vec![
        every(core, keys::period(&core.cfg), Start::AfterPeriod, keys::run),
        every(
            core,
            core.cfg.purge_interval,
            Start::AfterPeriod,
            purge::run,
        ),
        every(core, samples::PERIOD, Start::Now, samples::job(core)),
        every(core, stores::PERIOD, Start::Now, stores::job()),
        every(
            core,
            core.cfg.account.reseal_interval,
            Start::Now,
            reseal::run,
        ),
        every(core, core.cfg.account.mailer_poll, Start::Now, mailer::run),
    ];
    if !pending.is_empty() {
        let stop = core.shutdown.listen();
        jobs.push(core.handle.spawn(bringup::run(core.clone(), pending, stop)));
    }
    jobs
}

/// Runs `job` every `period` (a run that overruns delays the next) until
/// the shutdown stops the listeners (after the drain); a run under way is
/// finished first.
pub(crate) fn every<F, Fut>(
    core: &Arc<Core>,
    period: Duration,
    start: Start,
    mut job: F,
) -> JoinHandle<()>
where
    F: FnMut(Arc<Core>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let core = core.clone();
    let mut stop = core.shutdown.listen();
    // tokio's interval panics on zero.
    let period = period.max(Duration::from_millis(1));
    core.handle.clone().spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        if start == Start::AfterPeriod {
            tick.tick().await;
        }
        loop {
            tokio::select! {
                _ = tick.tick() => job(core.clone()).await,
                () = stop.recv() => break,
            }
        }
    })
}
