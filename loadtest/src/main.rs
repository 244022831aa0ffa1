//! `portcullis-loadtest`: see `loadtest/README.md`, or run it with `--help`.

use std::process::ExitCode;

use clap::Parser;
use portcullis_loadtest::options::Options;

fn main() -> ExitCode {
    let opts = Options::parse();
    // Accounts of one run are told from another's by the start time.
    #[allow(clippy::disallowed_methods)] // wall clock only to name the run
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let run_id = opts.run_id.clone().unwrap_or_else(|| started.to_string());
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("portcullis-loadtest: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(portcullis_loadtest::run(opts, run_id)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("portcullis-loadtest: {e:#}");
            if let Some(g) = e.downcast_ref::<goose::GooseError>() {
                eprintln!("  {g:?}");
            }
            ExitCode::from(2)
        }
    }
}
