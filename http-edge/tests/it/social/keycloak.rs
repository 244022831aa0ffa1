//! Keycloak as the OpenID provider: the distribution from Maven Central
//! (`org.keycloak:keycloak-quarkus-dist`, fetched with `mvn` the first time
//! and cached like the Cassandra jars), started in dev mode with an
//! in-memory database and a realm imported at start. The user signs in on
//! Keycloak's own login form.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use portcullis_engine::clock::Stopwatch;
use serde_json::json;

use super::{APP, Social, fetch, free_port, params, pkce, urlencode};

const KEYCLOAK_VERSION: &str = "26.7.3";

fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("PORTCULLIS_KEYCLOAK_CACHE") {
        return PathBuf::from(d);
    }
    portcullis_storage::scylla::fixture::maven::cache_dir()
}

/// Keycloak's home, fetched and unpacked the first time.
fn home() -> PathBuf {
    let home = cache_dir().join(format!("keycloak-{KEYCLOAK_VERSION}"));
    if home.join("bin/kc.sh").exists() {
        return home;
    }
    let parent = home.parent().unwrap();
    std::fs::create_dir_all(parent).unwrap();
    let work = tempfile::Builder::new()
        .prefix(".fetch-keycloak-")
        .tempdir_in(parent)
        .unwrap();
    let out = Command::new("mvn")
        .args(["-q", "-B", "dependency:copy", "-Dmdep.stripVersion=false"])
        .arg(format!(
            "-Dartifact=org.keycloak:keycloak-quarkus-dist:{KEYCLOAK_VERSION}:tar.gz"
        ))
        .arg(format!("-DoutputDirectory={}", work.path().display()))
        .stdin(Stdio::null())
        .output()
        .expect("mvn runs (apt-get install -y maven)");
    assert!(
        out.status.success(),
        "mvn could not fetch Keycloak {KEYCLOAK_VERSION}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let tar = work
        .path()
        .join(format!("keycloak-quarkus-dist-{KEYCLOAK_VERSION}.tar.gz"));
    let st = Command::new("tar")
        .arg("xzf")
        .arg(&tar)
        .arg("-C")
        .arg(work.path())
        .status()
        .unwrap();
    assert!(st.success());
    // Another process may have finished first: then keep its copy.
    let _ = std::fs::rename(
        work.path().join(format!("keycloak-{KEYCLOAK_VERSION}")),
        &home,
    );
    assert!(home.join("bin/kc.sh").exists(), "Keycloak did not unpack");
    home
}

struct Keycloak {
    child: Child,
    port: u16,
}

impl Keycloak {
    fn start() -> Keycloak {
        let home = home();
        let realm = json!({
            "realm": "portcullis",
            "enabled": true,
            "clients": [{
                "clientId": "portcullis",
                "secret": "kc-secret",
                "publicClient": false,
                "standardFlowEnabled": true,
                "directAccessGrantsEnabled": false,
                // The test's Portcullis listens on a port chosen at run time.
                "redirectUris": ["*"],
                "attributes": {"pkce.code.challenge.method": "S256"}
            }],
            "users": [{
                "username": "kc-user",
                "enabled": true,
                "email": "kc-user@example.com",
                "emailVerified": true,
                "firstName": "Kay",
                "lastName": "Cee",
                "credentials": [{"type": "password", "value": "kc-password", "temporary": false}]
            }]
        });
        let import = home.join("data/import");
        std::fs::create_dir_all(&import).unwrap();
        std::fs::write(import.join("portcullis-realm.json"), realm.to_string()).unwrap();
        let port = free_port();
        let log = std::fs::File::create(std::env::temp_dir().join(format!("keycloak-{port}.log")))
            .unwrap();
        let child = Command::new(home.join("bin/kc.sh"))
            .args([
                "start-dev",
                "--import-realm",
                "--db=dev-mem",
                "--http-host=127.0.0.1",
            ])
            .arg(format!("--http-port={port}"))
            .arg(format!("--http-management-port={}", free_port()))
            .env("KC_BOOTSTRAP_ADMIN_USERNAME", "admin")
            .env("KC_BOOTSTRAP_ADMIN_PASSWORD", "admin")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("Keycloak starts (java 17 on the PATH)");
        let kc = Keycloak { child, port };
        let waited = Stopwatch::start();
        loop {
            if let Some(r) = fetch(
                "GET",
                &format!("{}/.well-known/openid-configuration", kc.issuer()),
                &[],
                None,
            ) && r.status == 200
            {
                return kc;
            }
            assert!(
                waited.elapsed() < Duration::from_secs(180),
                "Keycloak did not start; see {}",
                std::env::temp_dir()
                    .join(format!("keycloak-{port}.log"))
                    .display()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}/realms/portcullis", self.port)
    }
}

impl Drop for Keycloak {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The cookies of a response, added to `jar`.
fn keep_cookies(jar: &mut Vec<(String, String)>, r: &crate::support::Resp) {
    for (k, v) in &r.headers {
        if k.eq_ignore_ascii_case("set-cookie")
            && let Some((name, val)) = v.split(';').next().unwrap().split_once('=')
        {
            jar.retain(|(n, _)| n != name.trim());
            jar.push((name.trim().to_owned(), val.to_owned()));
        }
    }
}

#[test]
fn a_user_signs_in_at_keycloak() {
    let kc = Keycloak::start();
    let providers = format!(
        "[providers.keycloak]\nissuer = '{}'\nclient_id = 'portcullis'\nclient_secret = 'kc-secret'\n",
        kc.issuer()
    );
    let s = Social::build("127.0.0.1", &[], &providers, |_| {});
    let (v, c) = pkce("kc");
    let r = s.srv.client().get(
        &format!(
            "/v1/oauth/keycloak/authorize?redirect_uri={}&state=kc-state&code_challenge={c}&code_challenge_method=S256",
            urlencode(APP)
        ),
        None,
    );
    assert_eq!(r.status, 302, "{}", r.text());
    let ours = r
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    // Keycloak's login form: fetch it, post the user's credentials to its action.
    let mut jar = Vec::new();
    let page = fetch("GET", r.header("location").unwrap(), &[], None).unwrap();
    assert_eq!(page.status, 200, "{}", page.text());
    keep_cookies(&mut jar, &page);
    let html = page.text();
    let action = html
        .split("action=\"")
        .nth(1)
        .and_then(|a| a.split('"').next())
        .expect("a login form")
        .replace("&amp;", "&");
    let cookie = jar
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let form = b"username=kc-user&password=kc-password&credentialId=";
    let done = fetch(
        "POST",
        &action,
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &cookie),
        ],
        Some(form),
    )
    .unwrap();
    assert_eq!(done.status, 302, "{}", done.text());
    let cb = done.header("location").unwrap().to_owned();
    assert!(
        cb.starts_with(&format!("{}/v1/oauth/keycloak/callback?", s.public)),
        "{cb}"
    );
    let back = s.callback(&cb, Some(&ours));
    let p = params(back.header("location").unwrap());
    assert_eq!(p["state"], "kc-state");
    let r = s.token(&p["code"], &v);
    assert_eq!(r.status, 200, "{}", r.text());
    let b = r.json();
    assert_eq!(b["created"], true);
    assert_eq!(b["user"]["email"], "kc-user@example.com");
    assert_eq!(b["user"]["email_verified"], true);
    assert_eq!(b["user"]["name"], "Kay Cee");
}
