//! The whole redirect dance in Debian's headless Chromium (driven over the
//! DevTools protocol by `tests/fixtures/browser/social.mjs`): a client app
//! page, Portcullis' authorize, the provider, the callback with its cookie,
//! and the app's code exchange.

use super::{Social, free_port};

#[test]
fn the_redirect_dance_runs_in_headless_chromium() {
    let app_port = free_port();
    let app = format!("http://localhost:{app_port}/done");
    let s = Social::build("localhost", &[app], "", |_| {});
    s.op.login_as("browser-user", "browser@example.com", true);
    let out = crate::support::browser_output_dir();
    let shot = out.join("social-login.png");
    let _ = std::fs::remove_file(&shot);
    let report = crate::support::run_browser_script(
        "social.mjs",
        &[
            ("PORTCULLIS", s.public.clone()),
            ("APP_PORT", app_port.to_string()),
            ("OUT_DIR", out.display().to_string()),
        ],
    );
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
