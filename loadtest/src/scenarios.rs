//! The goose scenarios: every simulated user signs in as one seeded account
//! when it starts, then loops over its scenario's operation.

use std::sync::OnceLock;

use goose::goose::{GooseMethod, GooseRequest, GooseUser, Scenario, Transaction, TransactionError};
use goose::prelude::TransactionResult;
use goose::{scenario, transaction};
use serde_json::{Value, json};

use crate::options::{Mix, Op, ScenarioKind};

/// What every transaction needs to know. goose calls plain `fn` pointers, so
/// this is set once before the attack starts and only read afterwards.
#[derive(Debug)]
pub struct Plan {
    pub mix: Mix,
    pub password: String,
    pub run_id: String,
    pub seeded: usize,
}

static PLAN: OnceLock<Plan> = OnceLock::new();

/// Sets the plan; the first call wins (there is one attack per process).
pub fn set_plan(plan: Plan) {
    let _ = PLAN.set(plan);
}

fn plan() -> Result<&'static Plan, Box<TransactionError>> {
    PLAN.get()
        .ok_or_else(|| Box::new(TransactionError::Custom("load plan not set".into())))
}

/// The address of seeded account `i` of a run.
pub fn seed_email(run_id: &str, i: usize) -> String {
    format!("lt-{run_id}-{i}@loadtest.example.com")
}

/// A simulated user's signed-in session.
#[derive(Debug, Clone)]
struct Session {
    email: String,
    access: String,
    refresh: String,
    /// xorshift state for drawing mixed operations (seeded per user).
    rng: u64,
    /// Addresses this user registered, to keep them unique.
    registered: u64,
}

/// The request name of an operation in goose's report.
pub fn request_name(op: Op) -> &'static str {
    match op {
        Op::Register => "/v1/auth/register",
        Op::Login => "/v1/auth/login",
        Op::Refresh => "/v1/auth/refresh",
        Op::Me => "/v1/users/me",
    }
}

/// The request name of the login each user starts with (and repeats after
/// losing its session), kept apart from the measured `login` operation.
pub const SIGN_IN: &str = "/v1/auth/login (sign in)";

/// The scenario to register for `kind`, with `think` as wait time.
pub fn build(
    kind: ScenarioKind,
    think: Option<(std::time::Duration, std::time::Duration)>,
) -> Result<Scenario, goose::GooseError> {
    let (name, step) = match kind {
        ScenarioKind::Register => ("register", transaction!(op_register)),
        ScenarioKind::Login => ("login", transaction!(op_login)),
        ScenarioKind::Refresh => ("refresh", transaction!(op_refresh)),
        ScenarioKind::Me => ("me", transaction!(op_me)),
        ScenarioKind::Mixed => ("mixed", transaction!(op_mixed)),
    };
    let mut s = scenario!(name)
        .register_transaction(transaction!(sign_in).set_on_start().set_name("sign in"))
        .register_transaction(step.set_name(name));
    if let Some((lo, hi)) = think {
        s = s.set_wait_time(lo, hi)?;
    }
    Ok(s)
}

/// Sends one JSON request named after `op`; returns the JSON body of a 2xx
/// answer, `None` for anything else (goose has recorded it as a failure).
async fn send(
    user: &mut GooseUser,
    name: &'static str,
    method: GooseMethod,
    path: &str,
    body: Option<&Value>,
    bearer: Option<&str>,
) -> Result<Option<Value>, Box<TransactionError>> {
    let mut rb = user.get_request_builder(&method, path)?;
    if let Some(b) = body {
        rb = rb.json(b);
    }
    if let Some(t) = bearer {
        rb = rb.bearer_auth(t);
    }
    let request = GooseRequest::builder()
        .method(method)
        .path(path)
        .name(name)
        .set_request_builder(rb)
        .build();
    let mut goose = user.request(request).await?;
    let response = match goose.response {
        Ok(r) if r.status().is_success() => r,
        _ => return Ok(None),
    };
    if response.status().as_u16() == 204 {
        return Ok(Some(Value::Null));
    }
    match response.json::<Value>().await {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            user.set_failure(
                &format!("{name}: unreadable body: {e}"),
                &mut goose.request,
                None,
                None,
            )?;
            Ok(None)
        }
    }
}

fn tokens(v: &Value) -> Option<(String, String)> {
    Some((
        v.get("access_token")?.as_str()?.to_owned(),
        v.get("refresh_token")?.as_str()?.to_owned(),
    ))
}

/// Signs in as seeded account `user index % seeded`, untimed as an
/// operation of its own ("sign in" transaction, `login` request).
async fn sign_in(user: &mut GooseUser) -> TransactionResult {
    let plan = plan()?;
    let index = user.weighted_users_index;
    let email = seed_email(&plan.run_id, index % plan.seeded.max(1));
    let body = json!({"email": email, "password": plan.password});
    let answer = send(
        user,
        SIGN_IN,
        GooseMethod::Post,
        "/v1/auth/login",
        Some(&body),
        None,
    )
    .await?;
    let (access, refresh) = answer.as_ref().and_then(tokens).unwrap_or_default();
    user.set_session_data(Session {
        email,
        access,
        refresh,
        rng: 0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9),
        registered: 0,
    });
    Ok(())
}

fn session(user: &mut GooseUser) -> Result<&mut Session, Box<TransactionError>> {
    user.get_session_data_mut::<Session>()
        .ok_or_else(|| Box::new(TransactionError::Custom("user has no session".into())))
}

async fn run(user: &mut GooseUser, op: Op) -> TransactionResult {
    let plan = plan()?;
    match op {
        Op::Register => {
            let index = user.weighted_users_index;
            let s = session(user)?;
            s.registered += 1;
            let email = format!(
                "lt-{}-u{index}-{}@loadtest.example.com",
                plan.run_id, s.registered
            );
            let body = json!({"email": email, "password": plan.password});
            send(
                user,
                request_name(op),
                GooseMethod::Post,
                "/v1/auth/register",
                Some(&body),
                None,
            )
            .await?;
        }
        Op::Login => {
            let email = session(user)?.email.clone();
            let body = json!({"email": email, "password": plan.password});
            let answer = send(
                user,
                request_name(op),
                GooseMethod::Post,
                "/v1/auth/login",
                Some(&body),
                None,
            )
            .await?;
            // Later operations use the newest session.
            if let Some((access, refresh)) = answer.as_ref().and_then(tokens) {
                let s = session(user)?;
                s.access = access;
                s.refresh = refresh;
            }
        }
        Op::Refresh => {
            let body = json!({"refresh_token": session(user)?.refresh});
            match send(
                user,
                request_name(op),
                GooseMethod::Post,
                "/v1/auth/refresh",
                Some(&body),
                None,
            )
            .await?
            {
                Some(answer) => {
                    if let Some((access, refresh)) = tokens(&answer) {
                        let s = session(user)?;
                        s.access = access;
                        s.refresh = refresh;
                    }
                }
                // The session is gone (the failure is counted): sign in again.
                None => sign_in(user).await?,
            }
        }
        Op::Me => {
            let access = session(user)?.access.clone();
            send(
                user,
                request_name(op),
                GooseMethod::Get,
                "/v1/users/me",
                None,
                Some(&access),
            )
            .await?;
        }
    }
    Ok(())
}

async fn op_register(user: &mut GooseUser) -> TransactionResult {
    run(user, Op::Register).await
}

async fn op_login(user: &mut GooseUser) -> TransactionResult {
    run(user, Op::Login).await
}

async fn op_refresh(user: &mut GooseUser) -> TransactionResult {
    run(user, Op::Refresh).await
}

async fn op_me(user: &mut GooseUser) -> TransactionResult {
    run(user, Op::Me).await
}

/// One operation drawn by the mix weights.
async fn op_mixed(user: &mut GooseUser) -> TransactionResult {
    let plan = plan()?;
    let s = session(user)?;
    // xorshift64: cheap, and reproducible per user.
    s.rng ^= s.rng << 13;
    s.rng ^= s.rng >> 7;
    s.rng ^= s.rng << 17;
    let op = plan.mix.pick((s.rng >> 32) as u32);
    run(user, op).await
}
