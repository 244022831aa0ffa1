//! `/docs`, the interactive API reference: served whole by Portcullis, and
//! working offline in Debian's headless Chromium.

use crate::support::{TestServer, browser_output_dir, run_browser_script};

#[test]
fn the_reference_page_and_its_files_come_from_portcullis() {
    let srv = TestServer::start();
    let c = srv.client();
    let page = c.get("/docs", None);
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    assert!(page.text().contains("/docs/swagger-ui-bundle.js"));
    for (file, ctype) in [
        ("swagger-ui-bundle.js", "text/javascript"),
        ("swagger-ui.css", "text/css"),
        ("init.js", "text/javascript"),
        ("favicon.png", "image/png"),
        ("LICENSE", "text/plain"),
    ] {
        let r = c.get(&format!("/docs/{file}"), None);
        assert_eq!(r.status, 200, "{file}");
        assert!(
            r.header("content-type").unwrap().starts_with(ctype),
            "{file}"
        );
        assert!(!r.body.is_empty());
    }
    c.get("/docs/../Cargo.toml", None).problem(404, "not_found");
    c.get("/docs/index.html", None).problem(404, "not_found");
    let r = c.get("/api", None);
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/docs"));
}

#[test]
fn the_reference_page_works_offline_in_headless_chromium() {
    let srv = TestServer::start();
    let base = format!("http://localhost:{}", srv.addr.port());
    let out = browser_output_dir();
    for shot in ["docs.png", "docs-try-it-out.png"] {
        let _ = std::fs::remove_file(out.join(shot));
    }
    let report = run_browser_script(
        "docs.mjs",
        &[
            ("PORTCULLIS", base.clone()),
            ("OUT_DIR", out.display().to_string()),
            ("EMAIL", "try-it-out@example.com".into()),
        ],
    );
    // Nothing requested from any other host (data: URLs have none).
    let own = base.trim_start_matches("http://");
    for h in report["hosts"].as_array().unwrap() {
        let h = h.as_str().unwrap();
        assert!(h == own || h.is_empty(), "the page requested {h}: {report}");
    }
    assert_eq!(report["failed"], serde_json::json!([]), "{report}");
    // Every operation of /openapi.json is on the page.
    assert!(report["operations"].as_u64().unwrap() > 30);
    assert_eq!(report["shown"], report["operations"], "{report}");
    // "Try it out" on register answers 201; the token given to
    // "Authorize" then works for /v1/users/me.
    assert_eq!(report["register"], 201, "{report}");
    assert_eq!(report["me"], 200, "{report}");
    assert!(
        report["me_text"]
            .as_str()
            .unwrap()
            .contains("try-it-out@example.com")
    );
    // The account is real.
    assert_eq!(
        srv.login("try-it-out@example.com", "correct horse battery staple")
            .status,
        200
    );
    for shot in ["docs.png", "docs-try-it-out.png"] {
        let png = std::fs::read(out.join(shot)).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 1000, "{shot}");
    }
}
