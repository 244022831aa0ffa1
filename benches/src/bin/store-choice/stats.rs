//! CPU, I/O and noise measurements (getrusage, /proc), and the statistics
//! of latency samples.

use crate::Row;

pub(crate) fn rusage(who: libc::c_int) -> (u64, i64) {
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
pub(crate) struct Cpu {
    pub(crate) rusage_us: u64,
    pub(crate) proc_us: u64,
    pub(crate) busy_us: u64,
    pub(crate) steal_us: u64,
    pub(crate) wbytes: u64,
}
pub(crate) fn cpu_now() -> Cpu {
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
pub(crate) fn cpu_cols(c0: Cpu, c1: Cpu, wall: f64, n: f64, unit: &str) -> Row {
    let ours = (c1.proc_us - c0.proc_us) as f64;
    let steal = (c1.steal_us - c0.steal_us) as f64;
    let busy = (c1.busy_us - c0.busy_us) as f64;
    row![format!("cpu_us/{unit}") => format!("{:.1}", (c1.rusage_us - c0.rusage_us) as f64 / n),
         format!("cpu_us/{unit}(proc)") => format!("{:.1}", ours / n),
         format!("disk_KiB/{unit}") => format!("{:.2}", (c1.wbytes - c0.wbytes) as f64 / 1024.0 / n),
         "other_cpu%" => format!("{:.0}", (busy - steal - ours).max(0.0) / 1e4 / wall), "steal%" => format!("{:.0}", steal / 1e4 / wall)]
}
pub(crate) fn pct(sorted: &[u64], p: f64) -> u64 {
    sorted
        .get(((sorted.len() as f64 * p / 100.0) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0)
}
pub(crate) fn mean(v: &[u64]) -> f64 {
    v.iter().sum::<u64>() as f64 / v.len().max(1) as f64
}
