//! The whole redirect dance in Debian's headless Chromium (driven over the
//! DevTools protocol by `tests/fixtures/browser/social.mjs`): a client app
//! page, Portcullis' authorize, the provider, the callback with its cookie,
//! and the app's code exchange.

use std::process::Command;

use serde_json::Value;

use super::{Social, free_port};

/// Where browser tests write their screenshots.
pub fn output_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_redirect_dance_runs_in_headless_chromium() {
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is not installed (./test.sh installs it)"
    );
    let app_port = free_port();
    let app = format!("http://localhost:{app_port}/done");
    let s = Social::build("localhost", &[app], "", |_| {});
    s.op.login_as("browser-user", "browser@example.com", true);
    let out = output_dir();
    let shot = out.join("social-login.png");
    let _ = std::fs::remove_file(&shot);
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/browser");
    let run = Command::new("node")
        .arg("--experimental-websocket")
        .arg("social.mjs")
        .current_dir(&fixtures)
        .env("PORTCULLIS", &s.public)
        .env("APP_PORT", app_port.to_string())
        .env("OUT_DIR", &out)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "the browser run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let result = &report["result"];
    assert_eq!(result["status"], 200, "{report}");
    assert_eq!(result["body"]["created"], true);
    assert_eq!(result["body"]["user"]["email"], "browser@example.com");
    assert!(result["body"]["access_token"].is_string());
    // The browser went through Portcullis and the provider, and back.
    let hosts: Vec<&str> = report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    let portcullis = s.public.trim_start_matches("http://");
    let op = format!("127.0.0.1:{}", s.op.port);
    for h in [portcullis, op.as_str(), &format!("localhost:{app_port}")] {
        assert!(hosts.contains(&h), "{h} not in {hosts:?}");
    }
    // The flow's cookie was cleared by the callback.
    assert!(
        !report["cookies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c.as_str().unwrap().starts_with("__Host-portcullis-oauth")),
        "{report}"
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 1000);
}
