//! Social login against a real OpenID provider: `oidc-provider` (OpenID
//! Certified, from npm; `./test.sh` installs it), started per test. The
//! provider's own code signs users in, issues codes and ID tokens; for the
//! negative checks the test has its next token response carry an ID token
//! it describes (see `tests/fixtures/oidc-provider/op.mjs`).

mod browser;
mod checks;
mod flows;
mod keycloak;
mod linking;
mod pods;
mod recorded;

use std::collections::HashMap;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use portcullis_engine::clock::Stopwatch;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_engine::social::SocialConfig;
use serde_json::{Value, json};

use crate::support::{Resp, TestServer, read_response};

/// Where the client app wants to come back (on the allow-list).
pub const APP: &str = "https://app.example.test/done";

/// The test provider, a child `node` process.
pub struct Op {
    child: Child,
    pub port: u16,
}

fn fixture_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oidc-provider")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Op {
    /// Starts the provider on `port`, its client's redirect URI `callback`.
    pub fn start(port: u16, callback: &str) -> Op {
        let dir = fixture_dir();
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "the test OpenID provider is not installed: run `npm ci` in {} (./test.sh does)",
            dir.display()
        );
        let child = Command::new("node")
            .arg("op.mjs")
            .current_dir(&dir)
            .env("OP_PORT", port.to_string())
            .env("RP_CALLBACK", callback)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs");
        let op = Op { child, port };
        let waited = Stopwatch::start();
        loop {
            if let Some(r) = fetch(
                "GET",
                &format!("{}/.well-known/openid-configuration", op.issuer()),
                &[],
                None,
            ) && r.status == 200
            {
                return op;
            }
            assert!(
                waited.elapsed() < Duration::from_secs(20),
                "the test OpenID provider did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn post(&self, path: &str, body: &Value) -> Value {
        let b = serde_json::to_vec(body).unwrap();
        let r = fetch(
            "POST",
            &format!("{}{path}", self.issuer()),
            &[("Content-Type", "application/json")],
            Some(&b),
        )
        .unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }

    /// The account the next sign-in at the provider is.
    pub fn login_as(&self, sub: &str, email: &str, verified: bool) {
        self.post(
            "/__test/login",
            &json!({"sub": sub, "email": email, "email_verified": verified, "name": sub}),
        );
    }

    /// An ID token as `spec` describes (see op.mjs); with
    /// `"next_token_response": true` the next code exchange returns it.
    pub fn forge(&self, spec: Value) -> String {
        self.post("/__test/forge", &spec)["id_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Publishes a second signing key (`"key": "rotated"` signs with it).
    pub fn rotate(&self) {
        self.post("/__test/rotate", &json!({}));
    }

    /// How often the provider's keys were fetched.
    pub fn jwks_hits(&self) -> u64 {
        let r = fetch("GET", &format!("{}/__test/stats", self.issuer()), &[], None).unwrap();
        r.json()["jwks_hits"].as_u64().unwrap()
    }

    /// Makes the token endpoint answer after `ms`.
    pub fn slow(&self, ms: u64) {
        self.post("/__test/slow", &json!({"ms": ms}));
    }
}

impl Drop for Op {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request to an absolute `http://host:port/...` URL.
pub fn fetch(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Option<Resp> {
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr: SocketAddr = host.parse().ok()?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let path = if path.is_empty() { "/" } else { path };
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    if let Some(b) = body {
        bytes.extend_from_slice(b);
    }
    s.write_all(&bytes).ok()?;
    read_response(&mut s, method == "HEAD")
}

/// The query parameters of a URL.
pub fn params(url: &str) -> HashMap<String, String> {
    let q = url.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce(seed: &str) -> (String, String) {
    let verifier = format!("verifier-{seed}-{}", "x".repeat(40));
    let challenge = URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ));
    (verifier, challenge)
}

/// A Portcullis whose provider `corp` is the test OP, and the OP.
pub struct Social {
    pub srv: TestServer,
    pub op: Op,
    pub public: String,
}

impl Social {
    pub fn start() -> Social {
        Social::with(|_| {})
    }

    pub fn with(tweak: impl FnOnce(&mut portcullis_engine::EngineConfig)) -> Social {
        Social::build("127.0.0.1", &[], "", tweak)
    }

    /// Portcullis known to browsers as `http://<host>:<port>`, with more
    /// allowed redirect URIs.
    pub fn build(
        host: &str,
        redirects: &[String],
        more_providers: &str,
        tweak: impl FnOnce(&mut portcullis_engine::EngineConfig),
    ) -> Social {
        let api = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let public = format!("http://{host}:{}", api.local_addr().unwrap().port());
        let op_port = free_port();
        let more: String = redirects.iter().map(|r| format!(", '{r}'")).collect();
        let file = format!(
            "public_url = '{public}'\nredirect_uris = ['{APP}', 'com.example.app:/oauth'{more}]\n\
             [providers.corp]\nissuer = 'http://127.0.0.1:{op_port}'\nclient_id = 'portcullis'\n\
             client_secret = 'op-secret'\nextra_client_ids = ['ios-app']\n{more_providers}"
        );
        let social = SocialConfig::parse(&file, false, &|_| None).unwrap();
        let srv = TestServer::listening_on(api, |e, _| {
            e.account.social = social;
            e.account.oauth_timeout = Duration::from_secs(2);
            tweak(e);
        });
        let op = Op::start(op_port, &format!("{public}/v1/oauth/corp/callback"));
        Social { srv, op, public }
    }

    /// `GET /authorize`: the provider URL and the flow's cookie.
    pub fn authorize(&self, state: &str, challenge: &str, extra: &str) -> (String, String) {
        let r = self.srv.client().get(
            &format!(
                "/v1/oauth/corp/authorize?redirect_uri={}&state={}&code_challenge={challenge}&code_challenge_method=S256{extra}",
                urlencode(APP),
                urlencode(state)
            ),
            None,
        );
        assert_eq!(r.status, 302, "{}", r.text());
        let cookie = r.header("set-cookie").unwrap().to_owned();
        assert!(cookie.starts_with("__Host-portcullis-oauth-"), "{cookie}");
        for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/;"] {
            assert!(cookie.contains(attr), "{cookie}");
        }
        let value = cookie.split(';').next().unwrap().trim().to_owned();
        (r.header("location").unwrap().to_owned(), value)
    }

    /// `POST /authorize` as a form with a link token: the provider URL and
    /// the flow's cookie.
    pub fn authorize_link(
        &self,
        state: &str,
        challenge: &str,
        link_token: &str,
    ) -> (String, String) {
        let r = self.authorize_form(state, challenge, link_token);
        assert_eq!(r.status, 302, "{}", r.text());
        let cookie = r.header("set-cookie").unwrap();
        let value = cookie.split(';').next().unwrap().trim().to_owned();
        (r.header("location").unwrap().to_owned(), value)
    }

    /// `POST /authorize` as a form, whatever it answers.
    pub fn authorize_form(&self, state: &str, challenge: &str, link_token: &str) -> Resp {
        let form = format!(
            "redirect_uri={}&state={}&code_challenge={challenge}&code_challenge_method=S256&link_token={}",
            urlencode(APP),
            urlencode(state),
            urlencode(link_token)
        );
        self.srv.client().request(
            "POST",
            "/v1/oauth/corp/authorize",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            Some(form.as_bytes()),
        )
    }

    /// Signs in at the provider (its cookies kept between its own
    /// redirects) and returns the callback URL it sends the browser to.
    pub fn at_provider(&self, url: &str) -> String {
        let mut jar: HashMap<String, String> = HashMap::new();
        let mut url = url.to_owned();
        for _ in 0..10 {
            if url.starts_with(&format!("{}/v1/oauth/", self.public)) {
                return url;
            }
            let cookies: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let cookie = cookies.join("; ");
            let r = fetch("GET", &url, &[("Cookie", &cookie)], None).expect("the provider answers");
            for (k, v) in &r.headers {
                if k.eq_ignore_ascii_case("set-cookie")
                    && let Some((name, val)) = v.split(';').next().unwrap().split_once('=')
                {
                    jar.insert(name.trim().to_owned(), val.to_owned());
                }
            }
            assert!(
                (300..400).contains(&r.status),
                "the provider answered {}: {}",
                r.status,
                r.text()
            );
            let loc = r.header("location").unwrap();
            url = if loc.starts_with("http") {
                loc.to_owned()
            } else {
                format!("{}{loc}", self.op.issuer())
            };
        }
        panic!("too many redirects at the provider");
    }

    /// The callback, with the browser's `cookie` (if any).
    pub fn callback(&self, url: &str, cookie: Option<&str>) -> Resp {
        let path = url.strip_prefix(&self.public).unwrap();
        let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("Cookie", *c)).collect();
        self.srv.client().request("GET", path, &headers, None)
    }

    /// The whole browser round trip: the client app's parameters at its
    /// `redirect_uri`.
    pub fn round_trip(&self, state: &str, challenge: &str) -> HashMap<String, String> {
        let (url, cookie) = self.authorize(state, challenge, "");
        let cb = self.at_provider(&url);
        let r = self.callback(&cb, Some(&cookie));
        assert_eq!(r.status, 302, "{}", r.text());
        let loc = r.header("location").unwrap();
        assert!(loc.starts_with(APP), "{loc}");
        params(loc)
    }

    /// `POST /v1/auth/social/token`.
    pub fn token(&self, code: &str, verifier: &str) -> Resp {
        self.srv.client().post_json(
            "/v1/auth/social/token",
            &json!({"code": code, "code_verifier": verifier}),
            None,
        )
    }

    /// Signs `sub` in from start to end; the token response.
    pub fn sign_in(&self, sub: &str, email: &str, verified: bool) -> Resp {
        self.op.login_as(sub, email, verified);
        let (v, c) = pkce(sub);
        let p = self.round_trip("st", &c);
        let code = p.get("code").unwrap_or_else(|| panic!("no code: {p:?}"));
        self.token(code, &v)
    }
}

pub fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The claims of a JWT (unverified; the server verified it).
pub fn claims(jwt: &str) -> Value {
    let p = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
}
