//! Every check of the callback and the code exchange fails closed: state,
//! cookie, code, verifier, redirect URI, and each ID-token check.

use serde_json::json;

use super::{APP, Social, params, pkce, urlencode};

#[test]
fn state_is_single_use_and_bound_to_the_browser() {
    let s = Social::start();
    let (_, c) = pkce("s");
    let (url, cookie) = s.authorize("st", &c, "");
    let cb = s.at_provider(&url);
    // No cookie (the attacker's callback URL planted in a victim's
    // browser): back to the app with an error, and the state is spent.
    let r = s.callback(&cb, None);
    assert_eq!(r.status, 302);
    let p = params(r.header("location").unwrap());
    assert_eq!(p["error"], "access_denied");
    assert_eq!(p["state"], "st");
    assert!(!p.contains_key("code"));
    s.callback(&cb, Some(&cookie)).problem(400, "invalid_state");
    // A wrong cookie: refused the same way.
    let (url, cookie2) = s.authorize("st2", &c, "");
    let cb = s.at_provider(&url);
    let name = cookie2.split('=').next().unwrap();
    let r = s.callback(&cb, Some(&format!("{name}=not-the-one")));
    assert_eq!(
        params(r.header("location").unwrap())["error"],
        "access_denied"
    );
    // A made-up or missing state: no client to answer.
    s.callback(
        &format!("{}/v1/oauth/corp/callback?code=x&state=made-up", s.public),
        Some(&cookie),
    )
    .problem(400, "invalid_state");
    s.callback(&format!("{}/v1/oauth/corp/callback?code=x", s.public), None)
        .problem(400, "invalid_state");
    // The state of one provider at another's callback.
    let (url, cookie) = s.authorize("st3", &c, "");
    let cb = s.at_provider(&url).replace("/corp/", "/other/");
    s.callback(&cb, Some(&cookie)).problem(400, "invalid_state");
}

#[test]
fn the_code_is_single_use_and_needs_the_client_verifier() {
    let s = Social::start();
    let (v, c) = pkce("v");
    let code = s.round_trip("st", &c)["code"].clone();
    // A wrong verifier burns the code: the right one comes too late.
    s.token(&code, &pkce("other").0)
        .problem(401, "invalid_grant");
    s.token(&code, &v).problem(401, "invalid_grant");
    let code = s.round_trip("st", &c)["code"].clone();
    assert_eq!(s.token(&code, &v).status, 200);
    s.token(&code, &v).problem(401, "invalid_grant");
    s.token("never-issued", &v).problem(401, "invalid_grant");
    s.srv
        .client()
        .post_json("/v1/auth/social/token", &json!({"code": 1}), None)
        .problem(400, "invalid_request");
}

#[test]
fn authorize_refuses_what_it_cannot_answer_safely() {
    let s = Social::start();
    let (_, c) = pkce("a");
    let get = |q: &str| {
        s.srv
            .client()
            .get(&format!("/v1/oauth/corp/authorize?{q}"), None)
    };
    let app = urlencode(APP);
    get(&format!(
        "redirect_uri={}&state=s&code_challenge={c}&code_challenge_method=S256",
        urlencode("https://evil.example/cb")
    ))
    .problem(400, "invalid_request");
    get(&format!(
        "redirect_uri={app}&state=s&code_challenge={c}&code_challenge_method=plain"
    ))
    .problem(400, "invalid_request");
    get(&format!(
        "redirect_uri={app}&state=s&code_challenge=short&code_challenge_method=S256"
    ))
    .problem(400, "invalid_request");
    get(&format!(
        "redirect_uri={app}&code_challenge={c}&code_challenge_method=S256"
    ))
    .problem(400, "invalid_request");
    get(&format!("redirect_uri={app}&redirect_uri={app}&state=s&code_challenge={c}&code_challenge_method=S256"))
        .problem(400, "invalid_request");
    s.srv
        .client()
        .get(&format!("/v1/oauth/nope/authorize?redirect_uri={app}&state=s&code_challenge={c}&code_challenge_method=S256"), None)
        .problem(404, "unknown_provider");
}

/// Each forged ID token, returned by the provider's real token endpoint in
/// place of the real one: the app gets `error=access_denied`, no account is
/// made; and the native-app endpoint refuses it too.
#[test]
fn every_id_token_check_fails_closed() {
    let s = Social::start();
    // The provider's clock (real time): the server's clock starts there too.
    let now = portcullis_engine::clock::Clock::now_ms(&*s.srv.clock) / 1000;
    let cases = [
        ("wrong aud", json!({"claims": {"aud": "someone-else"}})),
        (
            "wrong iss",
            json!({"claims": {"iss": "https://evil.example"}}),
        ),
        (
            "expired",
            json!({"claims": {"iat": now - 600, "exp": now - 300}}),
        ),
        (
            "issued in the future",
            json!({"claims": {"iat": now + 3600, "exp": now + 7200}}),
        ),
        ("wrong nonce", json!({"nonce": "not-the-flow's"})),
        ("a key not in the JWKS", json!({"key": "unknown"})),
        (
            "another key under the published kid",
            json!({"key": "unknown-same-kid"}),
        ),
        ("alg none", json!({"key": "none"})),
        (
            "HS256 keyed with the public key",
            json!({"key": "hs256-public-key"}),
        ),
        (
            "azp of another client",
            json!({"claims": {"azp": "someone-else"}}),
        ),
        (
            "several audiences, no azp",
            json!({"claims": {"aud": ["portcullis", "ios-app"]}}),
        ),
    ];
    for (i, (what, spec)) in cases.iter().enumerate() {
        let sub = format!("forged{i}");
        s.op.login_as(&sub, &format!("{sub}@example.com"), true);
        let mut spec = spec.clone();
        spec["next_token_response"] = json!(true);
        s.op.forge(spec.clone());
        let (_, c) = pkce(&sub);
        let p = s.round_trip("st", &c);
        assert_eq!(
            p.get("error").map(String::as_str),
            Some("access_denied"),
            "{what}: {p:?}"
        );
        assert!(!p.contains_key("code"), "{what}");
        // The native endpoint, with the nonce the token carries.
        spec["next_token_response"] = json!(false);
        if spec.get("nonce").is_none() {
            spec["nonce"] = json!("n");
        }
        let nonce = if *what == "wrong nonce" {
            "n".to_owned()
        } else {
            spec["nonce"].as_str().unwrap().to_owned()
        };
        let token = s.op.forge(spec);
        s.srv
            .client()
            .post_json(
                "/v1/oauth/corp/id-token",
                &json!({"id_token": token, "nonce": nonce}),
                None,
            )
            .problem(401, "invalid_id_token");
    }
    // No forged sign-in made an account: a password registration of each
    // address works.
    for i in 0..cases.len() {
        assert_eq!(
            s.srv
                .client()
                .post_json("/v1/auth/register", &json!({"email": format!("forged{i}@example.com"), "password": "correct horse battery staple"}), None)
                .status,
            201
        );
    }
}

#[test]
fn a_provider_slow_or_down_answers_within_the_timeout() {
    let s = Social::start();
    s.op.login_as("slow", "slow@example.com", true);
    s.op.slow(4000);
    let (_, c) = pkce("slow");
    // The provider answers after 4 s, the timeout is 2 s: the app is told
    // to come back later (no wall-clock assertion: the error says the
    // timeout fired, not a slow answer).
    let p = s.round_trip("st", &c);
    assert_eq!(p["error"], "temporarily_unavailable", "{p:?}");
    // Counted as the provider being unavailable, not as a bad token.
    let metrics = crate::support::Client { addr: s.srv.admin }
        .get("/metrics", None)
        .text();
    let unavailable = metrics
        .lines()
        .find(|l| {
            l.starts_with("portcullis_engine_social_signins_total{")
                && l.contains("provider=\"corp\"")
                && l.contains("result=\"unavailable\"")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(unavailable >= 1.0, "{metrics}");
    // A provider that never answered discovery: 503 at once.
    let down = Social::start();
    let token = down.op.forge(json!({"nonce": "n"}));
    drop(down.op);
    let (_, c) = pkce("down");
    let r = down.srv.client().get(
        &format!(
            "/v1/oauth/corp/authorize?redirect_uri={}&state=s&code_challenge={c}&code_challenge_method=S256",
            urlencode(APP)
        ),
        None,
    );
    r.problem(503, "unavailable");
    // The native endpoint too: its keys cannot be fetched.
    down.srv
        .client()
        .post_json(
            "/v1/oauth/corp/id-token",
            &json!({"id_token": token, "nonce": "n"}),
            None,
        )
        .problem(503, "unavailable");
}

/// The provider rotates its signing key: a token under the new key makes
/// Portcullis fetch the keys again (once, not for every unknown key id).
#[test]
fn a_rotated_provider_key_is_fetched_once_and_trusted() {
    let s = Social::start();
    assert_eq!(s.sign_in("rot", "rot@example.com", true).status, 200);
    let hits = s.op.jwks_hits();
    assert!(hits >= 1);
    s.op.rotate();
    // Keys are fetched again at most every 10 s; the rotation is later.
    s.srv.clock.advance(std::time::Duration::from_secs(11));
    s.op.forge(json!({"key": "rotated", "next_token_response": true}));
    let (_, c) = pkce("rot2");
    let p = s.round_trip("st", &c);
    assert!(
        p.contains_key("code"),
        "a token under the new key is trusted: {p:?}"
    );
    assert_eq!(s.op.jwks_hits(), hits + 1);
    // A made-up key id right after: refused without another fetch.
    let token = s.op.forge(json!({"key": "unknown", "nonce": "n"}));
    s.srv
        .client()
        .post_json(
            "/v1/oauth/corp/id-token",
            &json!({"id_token": token, "nonce": "n"}),
            None,
        )
        .problem(401, "invalid_id_token");
    assert_eq!(s.op.jwks_hits(), hits + 1);
    // The rotated key also signs native apps' tokens.
    let token = s.op.forge(json!({"key": "rotated", "nonce": "n2"}));
    let r = s.srv.client().post_json(
        "/v1/oauth/corp/id-token",
        &json!({"id_token": token, "nonce": "n2"}),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Two sign-ins started in one browser (two tabs): each flow has its own
/// cookie, so both finish with the browser's whole cookie jar.
#[test]
fn two_flows_in_one_browser_do_not_overwrite_each_other() {
    let s = Social::start();
    let (v1, c1) = pkce("tab1");
    let (v2, c2) = pkce("tab2");
    let (url1, cookie1) = s.authorize("one", &c1, "");
    let (url2, cookie2) = s.authorize("two", &c2, "");
    assert_ne!(
        cookie1.split('=').next(),
        cookie2.split('=').next(),
        "one cookie per flow"
    );
    let jar = format!("{cookie1}; {cookie2}");
    let cb1 = s.at_provider(&url1);
    let cb2 = s.at_provider(&url2);
    for (cb, v) in [(cb1, v1), (cb2, v2)] {
        let p = params(s.callback(&cb, Some(&jar)).header("location").unwrap());
        assert!(p.contains_key("code"), "{p:?}");
        assert_eq!(s.token(&p["code"], &v).status, 200);
    }
}
