//! The command line: every setting has a flag and a `PORTCULLIS_*`
//! variable, named once beside its default. The engine's settings are in
//! [`portcullis_engine::config::settings`]; the edge's own (listeners,
//! connections, proxies, threads, logs) are here. A flag wins over the
//! variable, the variable over the default. Values come through a
//! [`Source`], so tests fill settings from a map and never touch the
//! process environment.

use std::net::SocketAddr;
use std::sync::LazyLock;
use std::time::Duration;

use portcullis_engine::EngineConfig;
pub use portcullis_engine::config::resolve_scylla;
pub use portcullis_engine::config::settings::*;

use crate::clientip::TrustedProxies;
use crate::ratelimit::RateSpec;
use crate::server::ServerConfig;
pub use crate::telemetry::LogFormat;

portcullis_engine::settings! {
    EDGE_SETTINGS;
    LISTEN: "listen", "PORTCULLIS_LISTEN", "0.0.0.0:8080", "ADDR", "API listen address";
    ADMIN_LISTEN: "admin-listen", "PORTCULLIS_ADMIN_LISTEN", "127.0.0.1:9090", "ADDR", "Admin listen address (/metrics, /healthz, /readyz)";
    TRUSTED_PROXIES: "trusted-proxies", "PORTCULLIS_TRUSTED_PROXIES", "", "CIDRS", "Comma-separated proxy CIDRs whose forwarding header (see --forwarded-header) is believed";
    FORWARDED_HEADER: "forwarded-header", "PORTCULLIS_FORWARDED_HEADER", "x-forwarded-for", "HEADER", "The header the trusted proxies write (and overwrite): x-forwarded-for or forwarded (RFC 7239); the other is ignored";
    MAX_CONNECTIONS: "max-connections", "PORTCULLIS_MAX_CONNECTIONS", "10000", "N", "Open API connections at most";
    MAX_CONNECTIONS_PER_IP: "max-connections-per-ip", "PORTCULLIS_MAX_CONNECTIONS_PER_IP", "256", "N", "Open API connections per TCP peer address (IPv6: per /64) at most, 0 for no limit (behind a load balancer, whose address every client shares: raise it or use 0)";
    KEEPALIVE_TIMEOUT: "keepalive-timeout", "PORTCULLIS_KEEPALIVE_TIMEOUT", "75s", "DURATION", "Idle keep-alive connections are closed after this (keep it above the load balancer's)";
    REQUEST_TIMEOUT: "request-timeout", "PORTCULLIS_REQUEST_TIMEOUT", "15s", "DURATION", "A started request must arrive completely within this";
    WRITE_TIMEOUT: "write-timeout", "PORTCULLIS_WRITE_TIMEOUT", "30s", "DURATION", "Longest a response write may block before the connection is closed";
    WORKERS: "workers", "PORTCULLIS_WORKERS", "0", "N", "HTTP coroutine worker threads (0: one per core)";
    RUNTIME_THREADS: "runtime-threads", "PORTCULLIS_RUNTIME_THREADS", "0", "N", "Engine runtime threads (0: one per core)";
    SHUTDOWN_DRAIN: "shutdown-drain", "PORTCULLIS_SHUTDOWN_DRAIN", "10s", "DURATION", "On SIGTERM, how long in-flight requests may take to finish";
    LOG: "log", "PORTCULLIS_LOG", "info,fjall=warn,lsm_tree=warn,may=warn,scylla=warn", "FILTER", "Log filter (tracing EnvFilter syntax)";
    LOG_FORMAT: "log-format", "PORTCULLIS_LOG_FORMAT", "json", "FORMAT", "Log format: json (one object per line) or text";
}

/// Every setting of the binary, the engine's then the edge's, in `--help`
/// order.
pub static SETTINGS: LazyLock<Vec<Setting>> = LazyLock::new(|| {
    ENGINE_SETTINGS
        .iter()
        .chain(EDGE_SETTINGS)
        .copied()
        .collect()
});

/// Settings of the edge itself.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// API listen address.
    pub listen: SocketAddr,
    /// Admin listen address.
    pub admin_listen: SocketAddr,
    /// Issuer (for the discovery document).
    pub issuer: String,
    /// Trusted proxies.
    pub trusted_proxies: TrustedProxies,
    /// The header they write.
    pub forwarded_header: crate::clientip::ForwardedHeader,
    /// Per-IP rate limit.
    pub ip_rate_limit: RateSpec,
    /// Per-IP limit on introspection and revocation.
    pub introspection_rate_limit: RateSpec,
    /// API connection limits and timeouts.
    pub server: ServerConfig,
    /// may worker threads (0: cores).
    pub workers: usize,
    /// tokio worker threads (0: cores).
    pub runtime_threads: usize,
    /// Drain time at shutdown.
    pub shutdown_drain: Duration,
    /// Log filter.
    pub log: String,
    /// Log format.
    pub log_format: LogFormat,
}

/// Everything `portcullis serve` needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The edge.
    pub edge: EdgeConfig,
    /// The engine.
    pub engine: EngineConfig,
}

fn parse_addr(v: &str) -> Result<SocketAddr, String> {
    v.parse()
        .map_err(|_| "expected host:port with an IP address, like 0.0.0.0:8080".to_owned())
}

/// The API listener's connection limits and timeouts.
fn server_config(r: &Resolver<'_>) -> Result<ServerConfig, ConfigError> {
    Ok(ServerConfig {
        max_connections: r.num(&MAX_CONNECTIONS)?.max(1),
        max_connections_per_ip: r.num(&MAX_CONNECTIONS_PER_IP)?,
        keepalive_timeout: r.duration(&KEEPALIVE_TIMEOUT)?,
        request_timeout: r.duration(&REQUEST_TIMEOUT)?,
        write_timeout: r.duration(&WRITE_TIMEOUT)?,
    })
}

impl Default for ServerConfig {
    /// The defaults of the settings.
    fn default() -> Self {
        #[allow(clippy::expect_used)]
        // Invariant: the defaults resolve (`defaults_are_the_documented_ones`).
        server_config(&Resolver::new(&Flags::new(), &NoVariables))
            .expect("the default server settings resolve")
    }
}

impl Config {
    /// Resolves every setting from `flags`, then `source`, then the defaults.
    pub fn resolve(flags: &Flags, source: &dyn Source) -> Result<Config, ConfigError> {
        let engine = EngineConfig::resolve(flags, source)?;
        let r = Resolver::new(flags, source);
        let edge = EdgeConfig {
            listen: r.parse(&LISTEN, parse_addr)?,
            admin_listen: r.parse(&ADMIN_LISTEN, parse_addr)?,
            issuer: engine.issuer.clone(),
            trusted_proxies: r.parse(&TRUSTED_PROXIES, str::parse)?,
            forwarded_header: r.parse(&FORWARDED_HEADER, str::parse)?,
            ip_rate_limit: RateSpec::from(engine.shared_rate_limit),
            introspection_rate_limit: RateSpec::from(engine.introspection_rate_limit),
            server: server_config(&r)?,
            workers: r.num(&WORKERS)?,
            runtime_threads: r.num(&RUNTIME_THREADS)?,
            shutdown_drain: r.duration(&SHUTDOWN_DRAIN)?,
            log: r.raw(&LOG),
            log_format: r.parse(&LOG_FORMAT, |v| match v {
                "json" => Ok(LogFormat::Json),
                "text" => Ok(LogFormat::Text),
                _ => Err("expected json or text".to_owned()),
            })?,
        };
        if edge.listen == edge.admin_listen && edge.listen.port() != 0 {
            return Err(ConfigError(format!(
                "--{} and --{} must differ ({})",
                LISTEN.flag, ADMIN_LISTEN.flag, edge.listen
            )));
        }
        Ok(Config { edge, engine })
    }
}

/// The flag of one setting, with its variable and default in `--help`.
fn setting_arg(s: &Setting) -> clap::Arg {
    let default = if s.default.is_empty() {
        "none"
    } else {
        s.default
    };
    clap::Arg::new(s.flag)
        .long(s.flag)
        .value_name(s.value_name)
        .help(format!(
            "{} [env: {}] [default: {}]",
            s.help, s.env, default
        ))
}

/// The `serve` subcommand's arguments, generated from [`SETTINGS`].
pub fn serve_command() -> clap::Command {
    clap::Command::new("serve")
        .about("Run the server (embedded stores by default)")
        .args(SETTINGS.iter().map(setting_arg))
}

/// The `migrate` subcommand's arguments: the ScyllaDB settings and `--print`.
pub fn migrate_command() -> clap::Command {
    clap::Command::new("migrate")
        .about("Create or upgrade the ScyllaDB schema (idempotent), or print its CQL with --print")
        .arg(
            clap::Arg::new("print")
                .long("print")
                .action(clap::ArgAction::SetTrue)
                .help("Write the CQL to stdout without connecting"),
        )
        .args(
            SETTINGS
                .iter()
                .filter(|s| s.flag.starts_with("scylla-"))
                .map(setting_arg),
        )
}

/// The whole command line.
pub fn cli() -> clap::Command {
    clap::Command::new("portcullis")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Portcullis: a high-throughput authentication engine")
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(serve_command())
        .subcommand(migrate_command())
}

/// Flag values of a parsed `serve` or `migrate` invocation.
pub fn flags(matches: &clap::ArgMatches) -> Flags {
    SETTINGS
        .iter()
        .filter_map(|s| {
            // `try_`: a subcommand defines only some of the settings.
            matches
                .try_get_one::<String>(s.flag)
                .ok()
                .flatten()
                .map(|v| (s.flag, v.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests;
