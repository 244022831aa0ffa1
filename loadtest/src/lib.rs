//! `portcullis-loadtest`: goose scenarios against a running Portcullis.
//!
//! [`run`] seeds accounts, runs one goose attack, prints goose's report and
//! a line per operation, and judges the gates. See `loadtest/README.md`.

pub mod options;
pub mod report;
pub mod scenarios;
pub mod seed;

use anyhow::{Context, bail};
use goose::GooseAttack;
use goose::config::{GooseDefault, GooseDefaultType};

use options::{Options, ScenarioKind};
use report::Gates;

/// Users goose starts per second unless `--increase-rate` says otherwise
/// (goose's own default, 1/s, would spend a short run ramping up).
const DEFAULT_INCREASE_RATE: &str = "64";
/// How long a run lasts unless `--run-time` says otherwise.
const DEFAULT_RUN_TIME: usize = 60;

/// Runs the load test; `Ok(false)` when a gate failed.
pub async fn run(opts: Options, run_id: String) -> anyhow::Result<bool> {
    let host = opts
        .goose
        .host
        .clone()
        .context("give the server's address with --host, e.g. --host http://127.0.0.1:8080")?;
    let needs_seed = opts.scenario != ScenarioKind::Register
        || opts
            .mix
            .0
            .iter()
            .any(|&(op, _)| op != options::Op::Register);
    if needs_seed && opts.seed_users == 0 {
        bail!(
            "--seed-users must be at least 1 for the {:?} scenario",
            opts.scenario
        );
    }
    if needs_seed {
        eprintln!(
            "seeding {} accounts (run id {run_id}) at {host} ...",
            opts.seed_users
        );
        seed::seed(
            &host,
            &run_id,
            &opts.password,
            opts.seed_users,
            opts.seed_concurrency,
        )
        .await?;
    }
    scenarios::set_plan(scenarios::Plan {
        mix: opts.mix.clone(),
        password: opts.password.clone(),
        run_id,
        seeded: opts.seed_users,
    });
    let scenario = scenarios::build(opts.scenario, opts.think_time)?;
    let name = format!("{:?}", opts.scenario).to_lowercase();
    let attack = GooseAttack::initialize_with_config(opts.goose)?
        .register_scenario(scenario)
        .set_default(GooseDefault::IncreaseRate, DEFAULT_INCREASE_RATE)?
        .set_default(GooseDefault::RunTime, DEFAULT_RUN_TIME)?;
    // goose's attack future is ~22 KB: keep it on the heap.
    let metrics = Box::pin(attack.execute())
        .await
        .context("the goose attack failed")?;
    let ops = report::summarize(&metrics);
    print!("{}", report::render(&name, metrics.duration, &ops));
    let gates = Gates {
        max_error_rate: opts.max_error_rate,
        max_p99_ms: opts.max_p99_ms,
        fail_on_5xx: opts.fail_on_5xx,
    };
    let failures = report::judge(&ops, &gates);
    for f in &failures {
        println!("FAIL: {f}");
    }
    if failures.is_empty() && gates != Gates::default() {
        println!("PASS: every gate held");
    }
    Ok(failures.is_empty())
}

#[cfg(test)]
mod tests;
