//! Registers the accounts the load signs in as, before the load starts.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::json;

use crate::scenarios::seed_email;

/// Registers accounts `0..count` of `run_id` against `host`, `concurrency`
/// at a time. An account that already exists (409, a rerun with the same run
/// id) counts as seeded; a 429 or 503 is retried after its `Retry-After`;
/// anything else stops the run with the answer.
pub async fn seed(
    host: &str,
    run_id: &str,
    password: &str,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build the HTTP client")?;
    let url = format!("{}/v1/auth/register", host.trim_end_matches('/'));
    let workers = concurrency.clamp(1, count.max(1));
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..workers {
        let (client, url, run_id, password) = (
            client.clone(),
            url.clone(),
            run_id.to_owned(),
            password.to_owned(),
        );
        tasks.spawn(async move {
            for i in (w..count).step_by(workers) {
                register(&client, &url, &seed_email(&run_id, i), &password).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.context("a seeding task panicked")??;
    }
    Ok(())
}

async fn register(
    client: &reqwest::Client,
    url: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<()> {
    let body = json!({"email": email, "password": password});
    for _ in 0..20 {
        let r = client
            .post(url)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("seeding: POST {url} failed"))?;
        match r.status().as_u16() {
            201 | 409 => return Ok(()),
            429 | 503 => {
                let wait = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(wait.min(10))).await;
            }
            status => {
                let text = r.text().await.unwrap_or_default();
                bail!("seeding: POST {url} answered {status}: {text}");
            }
        }
    }
    bail!(
        "seeding: POST {url} kept answering 429/503; is the per-IP limit on? \
         (run the server with --ip-rate-limit off, or raise it, for load tests)"
    )
}
