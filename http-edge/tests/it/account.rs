//! Profile, sessions, introspection, revocation.

use serde_json::json;

use crate::support::*;

fn profile_patch_sets_clears_and_validates(stores: Stores) {
    let srv = TestServer::on(stores);
    let c = srv.client();
    let reg = srv.register("me@example.com", "password-1");
    let t = s(&reg["access_token"]);
    let r = c.send_json(
        "PATCH",
        "/v1/users/me",
        &json!({"name": "  Grace Hopper ", "picture_url": "https://cdn.example.com/g.png"}),
        Some(t),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["name"], "Grace Hopper");
    assert_eq!(r.json()["picture_url"], "https://cdn.example.com/g.png");
    assert_eq!(
        c.get("/v1/users/me", Some(t)).json()["name"],
        "Grace Hopper"
    );
    // Absent fields stay; null clears.
    let r = c.send_json("PATCH", "/v1/users/me", &json!({"name": null}), Some(t));
    assert_eq!(r.json()["name"], serde_json::Value::Null);
    assert_eq!(r.json()["picture_url"], "https://cdn.example.com/g.png");
    // Invalid values change nothing.
    let p = c
        .send_json(
            "PATCH",
            "/v1/users/me",
            &json!({"name": "x", "picture_url": "javascript:alert(1)"}),
            Some(t),
        )
        .problem(400, "invalid_request");
    assert_eq!(p["errors"][0]["field"], "picture_url");
    assert_eq!(
        c.get("/v1/users/me", Some(t)).json()["name"],
        serde_json::Value::Null
    );
    let p = c
        .send_json(
            "PATCH",
            "/v1/users/me",
            &json!({"email": "x@y.com"}),
            Some(t),
        )
        .problem(400, "invalid_request");
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field")
    );
    c.send_json("PATCH", "/v1/users/me", &json!({"name": 5}), Some(t))
        .problem(400, "invalid_request");
    c.send_json("PATCH", "/v1/users/me", &json!({"name": "x"}), None)
        .problem(401, "missing_token");
    assert_eq!(
        c.get("/v1/users/me", Some(t)).json()["email"],
        "me@example.com"
    );
}

fn sessions_are_listed_and_deleted_one_by_one(stores: Stores) {
    let srv = TestServer::on(stores);
    let c = srv.client();
    let first = srv.register("sess@example.com", "password-1");
    srv.clock.advance(std::time::Duration::from_secs(1));
    let second = c
        .request(
            "POST",
            "/v1/auth/login",
            &[
                ("Content-Type", "application/json"),
                ("User-Agent", "phone/1.0"),
            ],
            Some(br#"{"email":"sess@example.com","password":"password-1"}"#),
        )
        .json();
    let t1 = s(&first["access_token"]);
    let list = c.get("/v1/sessions", Some(t1));
    assert_eq!(list.status, 200);
    let sessions = list.json()["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0]["id"], first["session_id"]);
    assert_eq!(sessions[0]["current"], true);
    assert_eq!(sessions[1]["id"], second["session_id"]);
    assert_eq!(sessions[1]["current"], false);
    assert_eq!(sessions[1]["user_agent"], "phone/1.0");
    assert_eq!(sessions[1]["ip"], "127.0.0.1");
    for key in ["created_at", "last_used_at"] {
        assert!(sessions[0][key].as_str().unwrap().ends_with('Z'));
    }
    // Delete the other session.
    let path = format!("/v1/sessions/{}", s(&second["session_id"]));
    assert_eq!(
        c.request(
            "DELETE",
            &path,
            &[("Authorization", &format!("Bearer {t1}"))],
            None
        )
        .status,
        204
    );
    c.get("/v1/users/me", Some(s(&second["access_token"])))
        .problem(401, "invalid_token");
    c.post_json(
        "/v1/auth/refresh",
        &json!({"refresh_token": s(&second["refresh_token"])}),
        None,
    )
    .problem(401, "invalid_grant");
    assert_eq!(
        c.get("/v1/sessions", Some(t1)).json()["sessions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Unknown, malformed, already deleted: 404.
    for id in [
        "AAAAAAAAAAAAAAAAAAAAAA",
        "not-an-id",
        s(&second["session_id"]),
    ] {
        c.request(
            "DELETE",
            &format!("/v1/sessions/{id}"),
            &[("Authorization", &format!("Bearer {t1}"))],
            None,
        )
        .problem(404, "not_found");
    }
    // Another user's session is not ours to delete.
    let stranger = srv.register("stranger@example.com", "password-1");
    let path = format!("/v1/sessions/{}", s(&first["session_id"]));
    c.request(
        "DELETE",
        &path,
        &[(
            "Authorization",
            &format!("Bearer {}", s(&stranger["access_token"])),
        )],
        None,
    )
    .problem(404, "not_found");
    assert_eq!(c.get("/v1/users/me", Some(t1)).status, 200);
    c.get("/v1/sessions", None).problem(401, "missing_token");
}

fn introspection_reports_live_tokens_only(stores: Stores) {
    let srv = TestServer::on(stores);
    let c = srv.client();
    let reg = srv.register("intro@example.com", "password-1");
    let access = s(&reg["access_token"]);
    let refresh = s(&reg["refresh_token"]);
    let r = c.post_json("/v1/oauth/introspect", &json!({"token": access}), None);
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert_eq!(doc["active"], true);
    assert_eq!(doc["token_type"], "access_token");
    assert_eq!(doc["sub"], reg["user"]["id"]);
    assert_eq!(doc["sid"], reg["session_id"]);
    assert_eq!(doc["aud"], "portcullis");
    // RFC 7662 form encoding, with a refresh token.
    let form = format!("token={refresh}&token_type_hint=refresh_token");
    let r = c.request(
        "POST",
        "/v1/oauth/introspect",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(form.as_bytes()),
    );
    assert_eq!(r.json()["active"], true);
    assert_eq!(r.json()["token_type"], "refresh_token");
    for junk in [
        "junk",
        "a.b.c",
        "prt_AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        assert_eq!(
            c.post_json("/v1/oauth/introspect", &json!({"token": junk}), None)
                .json(),
            json!({"active": false})
        );
    }
    assert_eq!(c.post_empty("/v1/auth/logout", Some(access)).status, 204);
    assert_eq!(
        c.post_json("/v1/oauth/introspect", &json!({"token": access}), None)
            .json()["active"],
        false
    );
    assert_eq!(
        c.post_json("/v1/oauth/introspect", &json!({"token": refresh}), None)
            .json()["active"],
        false
    );
    c.post_json("/v1/oauth/introspect", &json!({}), None)
        .problem(400, "invalid_request");
}

fn revocation_ends_the_session_and_always_answers_200(stores: Stores) {
    let srv = TestServer::on(stores);
    let c = srv.client();
    let a = srv.register("rev@example.com", "password-1");
    let r = c.request(
        "POST",
        "/v1/oauth/revoke",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(format!("token={}", s(&a["refresh_token"])).as_bytes()),
    );
    assert_eq!(r.status, 200);
    c.get("/v1/users/me", Some(s(&a["access_token"])))
        .problem(401, "invalid_token");
    let b = srv.login("rev@example.com", "password-1").json();
    assert_eq!(
        c.post_json(
            "/v1/oauth/revoke",
            &json!({"token": s(&b["access_token"])}),
            None
        )
        .status,
        200
    );
    c.post_json(
        "/v1/auth/refresh",
        &json!({"refresh_token": s(&b["refresh_token"])}),
        None,
    )
    .problem(401, "invalid_grant");
    assert_eq!(
        c.post_json("/v1/oauth/revoke", &json!({"token": "garbage"}), None)
            .status,
        200
    );
}

on_every_store!(
    profile_patch_sets_clears_and_validates,
    sessions_are_listed_and_deleted_one_by_one,
    introspection_reports_live_tokens_only,
    revocation_ends_the_session_and_always_answers_200,
);
