//! GitHub and Sign in with Apple, whose servers cannot be reached from the
//! test machines: a local server answers with the responses their public
//! documentation records (`engine/tests/fixtures/github`,
//! `tests/fixtures/apple`), and checks what Portcullis sends it.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use super::{APP, Social, params, pkce, urlencode};

/// One request the recorded server received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: String,
}

type Answer = (u16, &'static str, String);

/// A local HTTP server answering with recorded bodies.
pub struct Recorded {
    pub base: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Recorded {
    pub fn start(answer: impl Fn(&Seen) -> Answer + Send + Sync + 'static) -> Recorded {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { return };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head, body_start) = loop {
                    let n = s.read(&mut chunk).unwrap_or(0);
                    if n == 0 {
                        break (String::new(), 0);
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break (String::from_utf8_lossy(&buf[..i]).into_owned(), i + 4);
                    }
                };
                let mut lines = head.lines();
                let Some(first) = lines.next() else { continue };
                let mut parts = first.split(' ');
                let method = parts.next().unwrap_or("").to_owned();
                let path = parts.next().unwrap_or("").to_owned();
                let headers: HashMap<String, String> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                    .collect();
                let len: usize = headers
                    .get("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let mut body = buf[body_start..].to_vec();
                while body.len() < len {
                    let n = s.read(&mut chunk).unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    body.extend_from_slice(&chunk[..n]);
                }
                let req = Seen {
                    method,
                    path,
                    headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                };
                let (status, ctype, out) = answer(&req);
                log.lock().unwrap().push(req);
                let _ = write!(
                    s,
                    "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{out}",
                    out.len()
                );
            }
        });
        Recorded { base, seen }
    }

    pub fn requests(&self, path_prefix: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path.starts_with(path_prefix))
            .cloned()
            .collect()
    }
}

fn github_fixture(name: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../engine/tests/fixtures/github")
            .join(name),
    )
    .unwrap()
}

fn apple_fixture(name: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/apple")
            .join(name),
    )
    .unwrap()
}

/// The authorize redirect's parameters and the flow's cookie.
fn start(s: &Social, provider: &str, challenge: &str) -> (HashMap<String, String>, String, String) {
    let r = s.srv.client().get(
        &format!(
            "/v1/oauth/{provider}/authorize?redirect_uri={}&state=app-state&code_challenge={challenge}&code_challenge_method=S256",
            urlencode(APP)
        ),
        None,
    );
    assert_eq!(r.status, 302, "{}", r.text());
    let loc = r.header("location").unwrap().to_owned();
    let cookie = r.header("set-cookie").unwrap().to_owned();
    let value = cookie.split(';').next().unwrap().trim().to_owned();
    (params(&loc), loc, format!("{value}|{cookie}"))
}

#[test]
fn github_signs_in_with_its_verified_primary_email_only() {
    let mode = Arc::new(Mutex::new("ok"));
    let m = mode.clone();
    let gh = Recorded::start(move |r| {
        match r.path.as_str() {
        "/login/oauth/access_token" if *m.lock().unwrap() == "bad_code" => {
            (200, "application/json", github_fixture("bad_code.json"))
        }
        "/login/oauth/access_token" => (200, "application/json", github_fixture("token.json")),
        "/api/user" if *m.lock().unwrap() == "no_verified_email" => (
            200,
            "application/json",
            github_fixture("user.json").replace("\"id\": 1,", "\"id\": 2,"),
        ),
        "/api/user" => (200, "application/json", github_fixture("user.json")),
        "/api/user/emails" if *m.lock().unwrap() == "no_verified_email" => (
            200,
            "application/json",
            r#"[{"email":"octocat@github.com","verified":false,"primary":true,"visibility":"public"}]"#.into(),
        ),
        "/api/user/emails" => (200, "application/json", github_fixture("emails.json")),
        _ => (404, "application/json", "{}".into()),
    }
    });
    let providers = format!(
        "[providers.github]\nkind = 'github'\nclient_id = 'Iv1.8a61f9b3a7aba766'\nclient_secret = 'gh-secret'\n\
         api_url = '{0}/api'\nauthorize_url = '{0}/login/oauth/authorize'\ntoken_url = '{0}/login/oauth/access_token'\n",
        gh.base
    );
    let s = Social::build("127.0.0.1", &[], &providers, |_| {});
    let (v, c) = pkce("gh");
    let (at, loc, cookie) = start(&s, "github", &c);
    assert!(
        loc.starts_with(&format!("{}/login/oauth/authorize?", gh.base)),
        "{loc}"
    );
    assert_eq!(at["client_id"], "Iv1.8a61f9b3a7aba766");
    assert_eq!(at["scope"], "read:user user:email");
    assert_eq!(at["code_challenge_method"], "S256");
    assert_eq!(
        at["redirect_uri"],
        format!("{}/v1/oauth/github/callback", s.public)
    );
    let cookie = cookie.split('|').next().unwrap().to_owned();
    // GitHub sends the browser back with its code.
    let cb = format!(
        "{}/v1/oauth/github/callback?code=gh-code-1&state={}",
        s.public, at["state"]
    );
    let r = s.callback(&cb, Some(&cookie));
    let p = params(r.header("location").unwrap());
    assert_eq!(p["state"], "app-state");
    let r = s.token(&p["code"], &v);
    assert_eq!(r.status, 200, "{}", r.text());
    let b = r.json();
    assert_eq!(b["created"], true);
    assert_eq!(b["user"]["email"], "octocat@github.com");
    assert_eq!(b["user"]["email_verified"], true);
    assert_eq!(b["user"]["name"], "monalisa octocat");
    let access = b["access_token"].as_str().unwrap();
    let ids = s
        .srv
        .client()
        .get("/v1/users/me/identities", Some(access))
        .json();
    assert_eq!(
        ids["identities"][0]["subject"], "1",
        "the numeric id, not the login"
    );
    // What Portcullis sent: the code with its PKCE verifier and the client
    // credentials; then the API with the access token.
    let token_req = &gh.requests("/login/oauth/access_token")[0];
    assert_eq!(token_req.method, "POST");
    let form = params(&format!("?{}", token_req.body));
    assert_eq!(form["code"], "gh-code-1");
    assert_eq!(form["grant_type"], "authorization_code");
    assert!(form["code_verifier"].len() >= 43);
    let basic = token_req.headers["authorization"]
        .strip_prefix("Basic ")
        .unwrap();
    assert_eq!(
        String::from_utf8(STANDARD.decode(basic).unwrap()).unwrap(),
        "Iv1.8a61f9b3a7aba766:gh-secret"
    );
    for api in gh.requests("/api/") {
        assert_eq!(
            api.headers["authorization"],
            "Bearer gho_16C7e42F292c6912E7710c838347Ae178B4a"
        );
    }

    // A bad code, answered as GitHub does (200 and an error object).
    *mode.lock().unwrap() = "bad_code";
    let (at, _, cookie) = start(&s, "github", &c);
    let cookie = cookie.split('|').next().unwrap().to_owned();
    let cb = format!(
        "{}/v1/oauth/github/callback?code=stale&state={}",
        s.public, at["state"]
    );
    let p = params(s.callback(&cb, Some(&cookie)).header("location").unwrap());
    assert_eq!(p["error"], "access_denied");

    // Another GitHub account whose only (primary) email is unverified: an
    // unverified email never counts, so no account can be made.
    *mode.lock().unwrap() = "no_verified_email";
    let (at, _, cookie) = start(&s, "github", &c);
    let cookie = cookie.split('|').next().unwrap().to_owned();
    let cb = format!(
        "{}/v1/oauth/github/callback?code=gh-code-2&state={}",
        s.public, at["state"]
    );
    let p = params(s.callback(&cb, Some(&cookie)).header("location").unwrap());
    s.token(&p["code"], &v).problem(400, "email_required");
}

/// RS256 with the fixture key.
fn sign(claims: &Value) -> String {
    let pem = apple_fixture("test-signing-key.pem");
    let der: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let key = ring::signature::RsaKeyPair::from_pkcs8(&STANDARD.decode(der).unwrap()).unwrap();
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "kid": "test-apple-key"}).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut sig = vec![0u8; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

#[test]
fn apple_posts_its_callback_and_is_paid_with_a_signed_client_secret() {
    let nonce: Arc<Mutex<String>> = Arc::default();
    let n = nonce.clone();
    let base: Arc<Mutex<String>> = Arc::default();
    let b = base.clone();
    let apple = Recorded::start(move |r| {
        let base = b.lock().unwrap().clone();
        match r.path.as_str() {
            "/.well-known/openid-configuration" => (
                200,
                "application/json",
                apple_fixture("openid-configuration.json")
                    .replace("https://appleid.apple.com", &base),
            ),
            "/auth/keys" => (200, "application/json", apple_fixture("jwks.json")),
            "/auth/token" => {
                let now = std::time::UNIX_EPOCH.elapsed().unwrap().as_secs();
                let mut claims: Value =
                    serde_json::from_str(&apple_fixture("id_token_claims.json")).unwrap();
                claims["iss"] = json!(base);
                claims["nonce"] = json!(n.lock().unwrap().clone());
                claims["iat"] = json!(now);
                claims["auth_time"] = json!(now);
                claims["exp"] = json!(now + 600);
                let body = apple_fixture("token.json").replace("{ID_TOKEN}", &sign(&claims));
                (200, "application/json", body)
            }
            _ => (404, "application/json", "{}".into()),
        }
    });
    *base.lock().unwrap() = apple.base.clone();
    // The team's key (a .p8 file, PKCS#8 P-256) signs each client secret.
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &rng,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p8 = dir.path().join("AuthKey_KEY1234567.p8");
    std::fs::write(
        &p8,
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(pkcs8.as_ref())
        ),
    )
    .unwrap();
    let providers = format!(
        "[providers.apple]\nkind = 'apple'\nissuer = '{}'\nclient_id = 'com.example.web'\nteam_id = 'TEAM123456'\n\
         key_id = 'KEY1234567'\nprivate_key_file = '{}'\nextra_client_ids = ['com.example.ios']\n",
        apple.base,
        p8.display()
    );
    let s = Social::build("127.0.0.1", &[], &providers, |_| {});
    let (v, c) = pkce("apple");
    let (at, _, cookie) = start(&s, "apple", &c);
    assert_eq!(at["response_mode"], "form_post");
    let (value, set_cookie) = cookie.split_once('|').unwrap();
    assert!(
        set_cookie.contains("SameSite=None") && set_cookie.contains("Secure"),
        "{set_cookie}"
    );
    *nonce.lock().unwrap() = at["nonce"].clone();
    // Apple posts the browser back (a cross-site form post).
    let form = format!(
        "code=c0d3.0.mrwsz.apple&state={}&user={}",
        at["state"],
        urlencode(
            r#"{"name":{"firstName":"Ann","lastName":"Lee"},"email":"x7sd9f2kq@privaterelay.appleid.com"}"#
        )
    );
    let r = s.srv.client().request(
        "POST",
        "/v1/oauth/apple/callback",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", value),
        ],
        Some(form.as_bytes()),
    );
    assert_eq!(r.status, 302, "{}", r.text());
    let p = params(r.header("location").unwrap());
    let r = s.token(&p["code"], &v);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["user"]["email"],
        "x7sd9f2kq@privaterelay.appleid.com"
    );
    assert_eq!(
        r.json()["user"]["email_verified"],
        true,
        "Apple's \"true\" string"
    );
    // The token request: client_secret_post, the secret an ES256 JWT of the
    // team's key for Apple's audience.
    let form = params(&format!("?{}", apple.requests("/auth/token")[0].body));
    assert_eq!(form["client_id"], "com.example.web");
    let jwt: Vec<&str> = form["client_secret"].split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(jwt[0]).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(jwt[1]).unwrap()).unwrap();
    assert_eq!(header, json!({"alg": "ES256", "kid": "KEY1234567"}));
    assert_eq!(
        (claims["iss"].clone(), claims["sub"].clone()),
        (json!("TEAM123456"), json!("com.example.web"))
    );
    assert_eq!(claims["aud"], "https://appleid.apple.com");
    let key = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        pkcs8.as_ref(),
        &rng,
    )
    .unwrap();
    use ring::signature::KeyPair as _;
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_FIXED,
        key.public_key().as_ref(),
    )
    .verify(
        format!("{}.{}", jwt[0], jwt[1]).as_bytes(),
        &URL_SAFE_NO_PAD.decode(jwt[2]).unwrap(),
    )
    .unwrap();

    // The iOS app's own ID token: aud its bundle id, the nonce hashed as
    // Apple's SDK sends it.
    let now = std::time::UNIX_EPOCH.elapsed().unwrap().as_secs();
    let mut claims: Value = serde_json::from_str(&apple_fixture("id_token_claims.json")).unwrap();
    claims["iss"] = json!(apple.base);
    claims["aud"] = json!("com.example.ios");
    claims["sub"] = json!("001234.other.5678");
    claims["email"] = json!("ios-user@privaterelay.appleid.com");
    claims["iat"] = json!(now);
    claims["exp"] = json!(now + 600);
    let hashed: String = ring::digest::digest(&ring::digest::SHA256, b"raw-nonce-1")
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    claims["nonce"] = json!(hashed);
    let token = sign(&claims);
    let r = s.srv.client().post_json(
        "/v1/oauth/apple/id-token",
        &json!({"id_token": token, "nonce": "raw-nonce-1"}),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["user"]["email"],
        "ios-user@privaterelay.appleid.com"
    );
    let other = sign(&claims);
    s.srv
        .client()
        .post_json(
            "/v1/oauth/apple/id-token",
            &json!({"id_token": other, "nonce": "another"}),
            None,
        )
        .problem(401, "invalid_id_token");
}

/// The RSA test key's public set, and ID tokens it signs.
fn test_jwks() -> String {
    apple_fixture("jwks.json")
}

/// Microsoft's multi-tenant endpoints: discovery names the issuer
/// `{tenantid}` literally, and each token's `iss` must be its own tenant's
/// (and, for `organizations`, not the personal-account tenant).
#[test]
fn microsoft_tokens_are_judged_by_their_own_tenant() {
    let base: Arc<Mutex<String>> = Arc::default();
    let b = base.clone();
    let ms = Recorded::start(move |r| {
        let base = b.lock().unwrap().clone();
        match r.path.as_str() {
            "/organizations/v2.0/.well-known/openid-configuration" => (
                200,
                "application/json",
                std::fs::read_to_string(
                    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("tests/fixtures/microsoft/openid-configuration.json"),
                )
                .unwrap()
                .replace(
                    "https://login.microsoftonline.com/organizations",
                    &format!("{base}/organizations"),
                ),
            ),
            "/organizations/discovery/v2.0/keys" => (200, "application/json", test_jwks()),
            _ => (404, "application/json", "{}".into()),
        }
    });
    *base.lock().unwrap() = ms.base.clone();
    let providers = format!(
        "[providers.microsoft]\nkind = 'microsoft'\ntenant = 'organizations'\nissuer = '{}/organizations/v2.0'\nclient_id = 'ms-app-id'\n",
        ms.base
    );
    let s = Social::build("127.0.0.1", &[], &providers, |_| {});
    let now = std::time::UNIX_EPOCH.elapsed().unwrap().as_secs();
    let token = |tid: &str, iss_tid: &str, nonce: &str| {
        sign(&json!({
            "iss": format!("https://login.microsoftonline.com/{iss_tid}/v2.0"),
            "aud": "ms-app-id", "sub": format!("sub-{tid}-{nonce}"), "tid": tid,
            "email": format!("{nonce}@contoso.example"), "email_verified": true,
            "iat": now, "exp": now + 600, "nonce": nonce,
        }))
    };
    let post = |t: String, nonce: &str| {
        s.srv.client().post_json(
            "/v1/oauth/microsoft/id-token",
            &json!({"id_token": t, "nonce": nonce}),
            None,
        )
    };
    let contoso = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let r = post(token(contoso, contoso, "n1"), "n1");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["user"]["email"], "n1@contoso.example");
    // Another tenant's issuer on this tenant's token: refused.
    let other = "00000000-0000-0000-0000-000000000001";
    post(token(contoso, other, "n2"), "n2").problem(401, "invalid_id_token");
    // A personal account is no organization.
    let consumers = "9188040d-6c67-4c5b-b112-36a304b66dad";
    post(token(consumers, consumers, "n3"), "n3").problem(401, "invalid_id_token");
}

/// A discovery document that points Portcullis (and its client secret)
/// at plain http elsewhere is refused; a failing provider is asked again
/// only after a pause, not by every request.
#[test]
fn a_provider_document_pointing_elsewhere_is_refused_and_failures_back_off() {
    let base: Arc<Mutex<String>> = Arc::default();
    let b = base.clone();
    let evil = Recorded::start(move |r| {
        let base = b.lock().unwrap().clone();
        match r.path.as_str() {
            "/good/.well-known/openid-configuration" | "/evil/.well-known/openid-configuration" => {
                let issuer = format!(
                    "{base}{}",
                    r.path.trim_end_matches("/.well-known/openid-configuration")
                );
                let token = if r.path.starts_with("/evil") {
                    "http://10.0.0.1/token".to_owned()
                } else {
                    format!("{base}/token")
                };
                (
                    200,
                    "application/json",
                    json!({
                        "issuer": issuer, "authorization_endpoint": format!("{base}/auth"),
                        "token_endpoint": token, "jwks_uri": format!("{base}/keys"),
                        "response_types_supported": ["code"], "subject_types_supported": ["public"],
                        "id_token_signing_alg_values_supported": ["RS256"]
                    })
                    .to_string(),
                )
            }
            "/keys" => (200, "application/json", test_jwks()),
            _ => (500, "application/json", "{}".into()),
        }
    });
    *base.lock().unwrap() = evil.base.clone();
    let providers = format!(
        "[providers.good]\nissuer = '{0}/good'\nclient_id = 'c'\n\
         [providers.evil]\nissuer = '{0}/evil'\nclient_id = 'c'\n\
         [providers.down]\nissuer = '{0}/down'\nclient_id = 'c'\n",
        evil.base
    );
    let s = Social::build("127.0.0.1", &[], &providers, |_| {});
    let (_, c) = pkce("e");
    let authorize = |p: &str| {
        s.srv.client().get(
            &format!(
                "/v1/oauth/{p}/authorize?redirect_uri={}&state=s&code_challenge={c}&code_challenge_method=S256",
                urlencode(APP)
            ),
            None,
        )
    };
    assert_eq!(authorize("good").status, 302);
    authorize("evil").problem(503, "unavailable");
    authorize("down").problem(503, "unavailable");
    authorize("down").problem(503, "unavailable");
    assert_eq!(
        evil.requests("/down/").len(),
        1,
        "asked once, then backed off"
    );
    s.srv.clock.advance(std::time::Duration::from_secs(6));
    authorize("down").problem(503, "unavailable");
    assert_eq!(evil.requests("/down/").len(), 2);
}
