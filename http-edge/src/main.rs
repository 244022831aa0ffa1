//! `portcullis`: parse configuration, install logging and metrics, build the
//! runtimes, bind the listeners, start the engine and the edge, and stop
//! gracefully on SIGTERM or SIGINT.

use std::process::ExitCode;
use std::sync::Arc;

use portcullis_edge::config::{self, Config, ProcessEnv};
use portcullis_edge::telemetry;
use portcullis_engine::Engine;
use portcullis_engine::clock::SystemClock;

/// mimalloc rather than glibc malloc: under refresh load glibc's
/// `malloc`/`free`/`malloc_consolidate` took about a sixth of the server's
/// CPU (perf, `target/release/e2e --phases redis`); mimalloc's per-thread
/// free lists make the many small, short-lived allocations of a request
/// (headers, JSON, futures, driver frames) cheap, including frees on another
/// thread than the allocation (coroutines and tasks migrate).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Before anything creates a file: whatever this process creates (the
    // store's own files included, which fjall makes with the umask) is the
    // owner's only. Directories and files Portcullis makes itself are 0700
    // and 0600 explicitly (`portcullis_storage::private_fs`) as well.
    {
        use nix::sys::stat::{Mode, umask};
        umask(Mode::S_IRWXG | Mode::S_IRWXO);
    }
    let matches = match config::cli().try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("portcullis: {}", first.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    match matches.subcommand() {
        Some(("serve", sub)) => serve(&config::flags(sub)),
        Some(("migrate", sub)) => migrate(&config::flags(sub), sub.get_flag("print")),
        _ => {
            eprintln!("portcullis: unknown command (try portcullis --help)");
            ExitCode::from(2)
        }
    }
}

/// One line on stderr, then exit.
fn fail(code: u8, msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("portcullis: {msg}");
    ExitCode::from(code)
}

/// `portcullis migrate [--print]`: creates or upgrades the ScyllaDB schema,
/// or prints its CQL without connecting.
fn migrate(flags: &config::Flags, print: bool) -> ExitCode {
    use portcullis_storage::scylla;
    let cfg = match config::resolve_scylla(flags, &ProcessEnv, !print) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("portcullis: {e}");
            return ExitCode::from(2);
        }
    };
    if print {
        print!("{}", scylla::schema::print(&cfg));
        return ExitCode::SUCCESS;
    }
    if let Err(e) = telemetry::init_tracing("info", config::LogFormat::Text) {
        eprintln!("portcullis: {e}");
        return ExitCode::from(2);
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(1, format!("cannot start a runtime: {e}")),
    };
    match rt.block_on(scylla::migrate(&cfg)) {
        Ok(report) => {
            if report.applied.is_empty() {
                println!(
                    "keyspace {} is up to date (schema version {})",
                    cfg.keyspace, report.version
                );
            } else {
                println!(
                    "keyspace {}: applied migrations {:?}; schema version {}",
                    cfg.keyspace, report.applied, report.version
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(1, format!("migrate failed: {e}")),
    }
}

fn serve(flags: &config::Flags) -> ExitCode {
    let cfg = match Config::resolve(flags, &ProcessEnv) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("portcullis: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = telemetry::init_tracing(&cfg.edge.log, cfg.edge.log_format) {
        eprintln!("portcullis: {e}");
        return ExitCode::from(2);
    }
    let metrics = match telemetry::install_metrics() {
        Ok(m) => m,
        Err(e) => return fail(1, e),
    };
    let cores = portcullis_engine::EngineConfig::available_cores();
    let workers = if cfg.edge.workers == 0 {
        cores
    } else {
        cfg.edge.workers
    };
    may::config().set_workers(workers).set_worker_pin(false);
    let threads = if cfg.edge.runtime_threads == 0 {
        cores
    } else {
        cfg.edge.runtime_threads
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("portcullis-engine")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(1, format!("cannot start the engine runtime: {e}")),
    };
    let api = match std::net::TcpListener::bind(cfg.edge.listen) {
        Ok(l) => l,
        Err(e) => {
            return fail(
                1,
                format!(
                    "cannot listen on {} (--listen / PORTCULLIS_LISTEN): {e}",
                    cfg.edge.listen
                ),
            );
        }
    };
    let admin = match std::net::TcpListener::bind(cfg.edge.admin_listen) {
        Ok(l) => l,
        Err(e) => {
            return fail(
                1,
                format!(
                    "cannot listen on {} (--admin-listen / PORTCULLIS_ADMIN_LISTEN): {e}",
                    cfg.edge.admin_listen
                ),
            );
        }
    };
    let data_dir = cfg.engine.data_dir.clone();
    let engine = match rt.block_on(Engine::start(
        cfg.engine,
        Arc::new(SystemClock),
        rt.handle().clone(),
    )) {
        Ok(e) => e,
        Err(
            e @ portcullis_engine::StartError::Store {
                store: "embedded", ..
            },
        ) => {
            return fail(1, format!("{e} (data directory {})", data_dir.display()));
        }
        Err(e) => return fail(1, e),
    };
    let running = match portcullis_edge::serve(engine, api, admin, &cfg.edge, Some(metrics)) {
        Ok(r) => r,
        Err(e) => return fail(1, format!("cannot start the HTTP servers: {e}")),
    };
    tracing::info!(
        api = %running.api_addr(),
        admin = %running.admin_addr(),
        data_dir = %data_dir.display(),
        http_workers = workers,
        engine_threads = threads,
        version = env!("CARGO_PKG_VERSION"),
        "portcullis listening"
    );
    rt.block_on(async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => tracing::info!(signal = "SIGTERM", "shutting down"),
            _ = tokio::signal::ctrl_c() => tracing::info!(signal = "SIGINT", "shutting down"),
        }
    });
    rt.block_on(running.shutdown(cfg.edge.shutdown_drain));
    tracing::info!("stopped");
    ExitCode::SUCCESS
}
