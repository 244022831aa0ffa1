//! Samples the shard mailbox depths and the process's CPU time.

use std::sync::Arc;
use std::time::Duration;

use crate::core::Core;
use crate::metrics as m;

pub(super) const PERIOD: Duration = Duration::from_secs(m::SAMPLE_INTERVAL_SECS);

/// The job, with its per-shard labels made once.
pub(super) fn job(
    core: &Core,
) -> impl FnMut(Arc<Core>) -> std::future::Ready<()> + Send + 'static + use<> {
    let labels: Vec<String> = (0..core.shards.all().len())
        .map(|i| i.to_string())
        .collect();
    let cpu = metrics::counter!(m::PROCESS_CPU_MICROSECONDS_TOTAL);
    move |core| {
        for (shard, label) in core.shards.all().iter().zip(&labels) {
            metrics::gauge!(m::SHARD_MAILBOX_DEPTH, "shard" => label.clone())
                .set(shard.depth() as f64);
        }
        if let Some(us) = crate::clock::process_cpu_us() {
            cpu.absolute(us);
        }
        std::future::ready(())
    }
}
