//! Command-line options: Portcullis' own, then goose's (flattened, so every
//! goose option such as `--host`, `--users`, `--run-time` works as usual).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use goose::config::GooseConfiguration;

/// One Portcullis operation the load test drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `POST /v1/auth/register` with a new address (201).
    Register,
    /// `POST /v1/auth/login` as a seeded user (one password verify).
    Login,
    /// `POST /v1/auth/refresh` with the user's current refresh token.
    Refresh,
    /// `GET /v1/users/me` with the user's current access token.
    Me,
}

impl Op {
    /// Every operation, in the order reports list them.
    pub const ALL: [Op; 4] = [Op::Register, Op::Login, Op::Refresh, Op::Me];

    /// The name used in `--mix`, scenario names and the report.
    pub fn name(self) -> &'static str {
        match self {
            Op::Register => "register",
            Op::Login => "login",
            Op::Refresh => "refresh",
            Op::Me => "me",
        }
    }
}

impl FromStr for Op {
    type Err = String;
    fn from_str(s: &str) -> Result<Op, String> {
        Op::ALL
            .into_iter()
            .find(|op| op.name() == s)
            .ok_or_else(|| format!("unknown operation '{s}' (register, login, refresh, me)"))
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which load to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScenarioKind {
    /// New accounts only (one password hash each).
    Register,
    /// Password logins of seeded users only.
    Login,
    /// Refresh-token rotations only.
    Refresh,
    /// `GET /v1/users/me` only.
    Me,
    /// Every operation, drawn per iteration by `--mix` weights.
    Mixed,
}

/// Operation weights for the mixed scenario (`refresh=45,me=44,login=10,register=1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix(pub Vec<(Op, u32)>);

impl Mix {
    /// The operation at `draw`, a number below [`Mix::total`].
    pub fn pick(&self, draw: u32) -> Op {
        let mut left = draw % self.total().max(1);
        for &(op, w) in &self.0 {
            if left < w {
                return op;
            }
            left -= w;
        }
        // Unreachable with a positive total; any operation is a safe answer.
        self.0.first().map_or(Op::Me, |&(op, _)| op)
    }

    /// Sum of the weights.
    pub fn total(&self) -> u32 {
        self.0.iter().map(|&(_, w)| w).sum()
    }
}

impl FromStr for Mix {
    type Err = String;
    fn from_str(s: &str) -> Result<Mix, String> {
        let mut out: Vec<(Op, u32)> = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (op, w) = part
                .split_once('=')
                .ok_or_else(|| format!("'{part}' is not op=weight"))?;
            let op: Op = op.trim().parse()?;
            let w: u32 = w
                .trim()
                .parse()
                .map_err(|_| format!("weight of {op} must be a whole number, not '{w}'"))?;
            if out.iter().any(|&(o, _)| o == op) {
                return Err(format!("{op} is given twice"));
            }
            if w > 0 {
                out.push((op, w));
            }
        }
        if out.is_empty() {
            return Err("the mix needs at least one operation with a positive weight".into());
        }
        Ok(Mix(out))
    }
}

/// A think-time range, `500ms..2s` or one value `1s`.
pub fn parse_think_time(s: &str) -> Result<(Duration, Duration), String> {
    let (lo, hi) = s.split_once("..").unwrap_or((s, s));
    let (lo, hi) = (parse_duration(lo)?, parse_duration(hi)?);
    if lo > hi {
        return Err(format!("the range {s} runs backwards"));
    }
    Ok((lo, hi))
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{s}' is not a duration such as 500ms or 2s"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        _ => Err(format!("'{s}' has an unknown unit (ms or s)")),
    }
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    let v: f64 = match s.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => s.parse::<f64>(),
    }
    .map_err(|_| format!("'{s}' is not a fraction (0.01) or a percentage (1%)"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("'{s}' is not between 0 and 100 %"))
    }
}

fn parse_positive_ms(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("'{s}' is not a positive number of milliseconds")),
    }
}

/// Load tests for Portcullis, built on goose.
///
/// Registers `--seed-users` accounts first (not measured), then runs the
/// chosen scenario and prints goose's report and one line per operation.
/// With `--max-error-rate`, `--max-p99-ms` or `--fail-on-5xx` the exit status
/// says whether the run passed (0) or failed (1).
#[derive(Debug, Parser)]
#[command(name = "portcullis-loadtest", next_help_heading = "Portcullis")]
pub struct Options {
    /// Which load to run.
    #[arg(long, value_enum, default_value = "mixed")]
    pub scenario: ScenarioKind,
    /// Operation weights of the mixed scenario (op=weight, comma-separated).
    #[arg(long, default_value = "refresh=45,me=44,login=10,register=1")]
    pub mix: Mix,
    /// Accounts registered before the load starts; logins, refreshes and
    /// `me` run as these users.
    #[arg(long, default_value_t = 100)]
    pub seed_users: usize,
    /// Registrations in flight at once while seeding.
    #[arg(long, default_value_t = 16)]
    pub seed_concurrency: usize,
    /// Password of the seeded accounts.
    #[arg(long, default_value = "loadtest-password-1")]
    pub password: String,
    /// Tells this run's accounts from earlier runs' (default: the start time).
    /// Reusing one skips registering accounts that already exist.
    #[arg(long)]
    pub run_id: Option<String>,
    /// Pause between two operations of one user, `500ms..2s` or `1s`
    /// (off by default: capacity runs go as fast as answers come).
    #[arg(long, value_parser = parse_think_time)]
    pub think_time: Option<(Duration, Duration)>,
    /// Fail when more than this share of requests failed (`0.01` or `1%`).
    #[arg(long, value_parser = parse_fraction)]
    pub max_error_rate: Option<f64>,
    /// Fail when any operation's 99th percentile is above this many milliseconds.
    #[arg(long, value_parser = parse_positive_ms)]
    pub max_p99_ms: Option<f64>,
    /// Fail on any 5xx answer or transport error (connection refused, reset, timeout).
    #[arg(long)]
    pub fail_on_5xx: bool,
    /// goose's own options.
    #[command(flatten)]
    pub goose: GooseConfiguration,
}
