//! No mail bombing: verification and email-change mail is limited per
//! account and per address, and a full outbox refuses new mail.

use std::time::Duration;

use serde_json::json;

use crate::support::*;

// ---- 8. No mail bombing --------------------------------------------------

#[test]
fn verification_requests_send_one_mail_a_minute_per_account() {
    let srv = TestServer::start();
    let c = srv.client();
    let reg = srv.register("bombed@example.com", "password-1");
    let access = s(&reg["access_token"]).to_owned();
    assert_eq!(
        c.post_empty("/v1/email/verification", Some(&access)).status,
        202
    );
    for _ in 0..39 {
        let r = c.post_empty("/v1/email/verification", Some(&access));
        r.problem(429, "too_many_requests");
        assert!(r.header("retry-after").is_some());
    }
    let mut seen = Vec::new();
    srv.next_mail("bombed@example.com", &mut seen);
    std::thread::sleep(Duration::from_millis(300));
    let mails = std::fs::read_dir(srv.data_dir().join("mail"))
        .unwrap()
        .filter(|e| {
            let p = e.as_ref().unwrap().path();
            std::fs::read_to_string(&p).is_ok_and(|t| t.contains("To: bombed@example.com"))
        })
        .count();
    assert_eq!(mails, 1);
}

#[test]
fn nobody_can_bomb_an_address_with_email_change_links_from_many_accounts() {
    let srv = TestServer::start();
    let c = srv.client();
    let mut answers = Vec::new();
    for i in 0..4 {
        let email = format!("bomber{i}@example.com");
        let reg = srv.register(&email, "password-1");
        answers.push(
            c.post_json(
                "/v1/email/change",
                &json!({"new_email": "victim-inbox@example.com", "password": "password-1"}),
                Some(s(&reg["access_token"])),
            )
            .status,
        );
    }
    assert_eq!(answers, vec![202, 429, 429, 429]);
    // The forgot route is limited per address, whether or not it has an account.
    for email in ["someone@example.com", "nobody-here@example.com"] {
        let r = c.post_json("/v1/password/forgot", &json!({"email": email}), None);
        assert_eq!(r.status, 202);
        c.post_json("/v1/password/forgot", &json!({"email": email}), None)
            .problem(429, "too_many_requests");
    }
}

#[test]
fn a_full_outbox_refuses_new_mail_until_it_drains() {
    // A relay that refuses connections: messages stay queued and retried.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let srv = TestServer::with(|e, _| {
        e.account.outbox_max = 2;
        e.account.mailer_poll = Duration::from_millis(50);
        e.account.transport = Some(portcullis_engine::mail::transport::TransportConfig::Smtp(
            portcullis_engine::mail::transport::SmtpSettings {
                host: "127.0.0.1".into(),
                port: Some(port),
                security: portcullis_engine::mail::transport::SmtpSecurity::None,
                username: None,
                password: None,
                ca_file: None,
                timeout: Duration::from_secs(1),
            },
        ));
    });
    let c = srv.client();
    let mut status = Vec::new();
    for i in 0..2 {
        let reg = srv.register(&format!("queued{i}@example.com"), "password-1");
        status.push(
            c.post_empty("/v1/email/verification", Some(s(&reg["access_token"])))
                .status,
        );
    }
    assert_eq!(status, vec![202, 202]);
    let reg = srv.register("queued-last@example.com", "password-1");
    let access = s(&reg["access_token"]).to_owned();
    let mut last = 0;
    for _ in 0..100 {
        let r = c.post_empty("/v1/email/verification", Some(&access));
        last = r.status;
        if last == 503 {
            r.problem(503, "unavailable");
            break;
        }
        // The mailer has not counted the queue yet: the minute limit.
        srv.clock.advance(Duration::from_secs(61));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(last, 503);
}
