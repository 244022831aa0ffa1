use std::collections::BTreeMap;
use std::time::Duration;

use clap::Parser;

use crate::options::{Mix, Op, Options, ScenarioKind, parse_think_time};
use crate::report::{Gates, OpSummary, judge, render};

fn op(name: &str, requests: usize, statuses: &[(u16, usize)], p99_ms: f64) -> OpSummary {
    let statuses: BTreeMap<u16, usize> = statuses.iter().copied().collect();
    let failed = statuses
        .iter()
        .filter(|&(&s, _)| !(200..300).contains(&s))
        .map(|(_, &n)| n)
        .sum();
    OpSummary {
        name: name.into(),
        requests,
        failed,
        statuses,
        per_sec: requests as f64 / 10.0,
        p50_ms: p99_ms / 4.0,
        p95_ms: p99_ms / 2.0,
        p99_ms,
    }
}

#[test]
fn the_default_mix_is_mostly_refresh_and_me() {
    let o = Options::try_parse_from(["portcullis-loadtest", "--host", "http://127.0.0.1:8080"])
        .unwrap();
    assert_eq!(o.scenario, ScenarioKind::Mixed);
    assert_eq!(
        o.mix,
        Mix(vec![
            (Op::Refresh, 45),
            (Op::Me, 44),
            (Op::Login, 10),
            (Op::Register, 1)
        ])
    );
    assert_eq!(o.think_time, None, "capacity runs do not think");
    assert_eq!(o.goose.host.as_deref(), Some("http://127.0.0.1:8080"));
    // Draws cover the weights exactly once per cycle of the total.
    let mut counts = BTreeMap::new();
    for draw in 0..o.mix.total() {
        *counts.entry(o.mix.pick(draw)).or_insert(0) += 1;
    }
    assert_eq!(counts[&Op::Refresh], 45);
    assert_eq!(counts[&Op::Register], 1);
}

#[test]
fn bad_mixes_and_options_are_refused_with_the_reason() {
    for (mix, reason) in [
        ("refresh=1,logout=2", "unknown operation 'logout'"),
        ("refresh", "not op=weight"),
        ("me=x", "whole number"),
        ("me=1,me=2", "given twice"),
        ("me=0", "at least one operation"),
    ] {
        let e = mix.parse::<Mix>().unwrap_err();
        assert!(e.contains(reason), "{mix}: {e}");
    }
    for args in [
        ["--max-error-rate", "2"],
        ["--max-error-rate", "-1%"],
        ["--max-p99-ms", "0"],
        ["--think-time", "2s..1s"],
        ["--scenario", "logout"],
    ] {
        let all = ["portcullis-loadtest", args[0], args[1]];
        assert!(Options::try_parse_from(all).is_err(), "{args:?} accepted");
    }
    let o = Options::try_parse_from([
        "portcullis-loadtest",
        "--max-error-rate",
        "1%",
        "--think-time",
        "500ms..2s",
        "--scenario",
        "login",
        "-u",
        "8",
    ])
    .unwrap();
    assert_eq!(o.max_error_rate, Some(0.01));
    assert_eq!(o.scenario, ScenarioKind::Login);
    assert_eq!(o.goose.users, Some(8));
    assert_eq!(
        parse_think_time("1s").unwrap(),
        (Duration::from_secs(1), Duration::from_secs(1))
    );
}

#[test]
fn gates_fail_on_5xx_error_rate_and_p99() {
    let clean = [op("POST /v1/auth/refresh", 1000, &[(200, 1000)], 4.0)];
    let all = Gates {
        max_error_rate: Some(0.01),
        max_p99_ms: Some(50.0),
        fail_on_5xx: true,
    };
    assert!(judge(&clean, &all).is_empty());

    // One 503 among 1000: under the error rate, but a 5xx.
    let one_503 = [op(
        "POST /v1/auth/login",
        1000,
        &[(200, 999), (503, 1)],
        4.0,
    )];
    let f = judge(&one_503, &all);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(f[0].contains("POST /v1/auth/login") && f[0].contains("5xx"));
    assert!(
        judge(
            &one_503,
            &Gates {
                fail_on_5xx: false,
                ..all
            }
        )
        .is_empty()
    );

    // Transport errors (no answer) count as 5xx.
    let refused = [op("GET /v1/users/me", 10, &[(200, 9), (0, 1)], 1.0)];
    assert_eq!(
        judge(
            &refused,
            &Gates {
                fail_on_5xx: true,
                ..Gates::default()
            }
        )
        .len(),
        1
    );

    // 2 % 401s break a 1 % error rate without any 5xx.
    let unauthorized = [op("GET /v1/users/me", 100, &[(200, 98), (401, 2)], 1.0)];
    let f = judge(&unauthorized, &all);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(f[0].contains("error rate 0.0200"), "{f:?}");

    // A slow operation breaks the p99 gate, naming itself.
    let slow = [
        op("GET /v1/users/me", 100, &[(200, 100)], 1.0),
        op("POST /v1/auth/login", 100, &[(200, 100)], 80.0),
    ];
    let f = judge(&slow, &all);
    assert_eq!(
        f,
        vec!["POST /v1/auth/login: p99 80.00 ms is above --max-p99-ms 50".to_owned()]
    );

    // Nothing sent is a failure whenever a gate is set, and fine otherwise.
    assert_eq!(judge(&[], &all), vec!["no request was sent".to_owned()]);
    assert!(judge(&[], &Gates::default()).is_empty());
}

#[test]
fn the_report_has_a_line_per_request_with_errors_by_status() {
    let text = render(
        "mixed",
        10,
        &[
            op("GET /v1/users/me", 5000, &[(200, 4990), (401, 10)], 1.5),
            op("POST /v1/auth/refresh", 4000, &[(200, 4000), (0, 2)], 3.0),
        ],
    );
    assert!(text.contains("scenario mixed, 10 s"), "{text}");
    let me = text
        .lines()
        .find(|l| l.contains("GET /v1/users/me"))
        .unwrap();
    assert!(me.contains("500.0") && me.ends_with("401:10"), "{me}");
    let refresh = text.lines().find(|l| l.contains("refresh")).unwrap();
    assert!(refresh.ends_with("transport:2"), "{refresh}");
}
