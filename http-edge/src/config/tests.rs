use std::collections::HashMap;
use std::path::PathBuf;

use portcullis_engine::config::{LockoutPolicy, TokenStoreConfig, UserStoreConfig};
use portcullis_engine::hashpool::HashScheme;

use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn flags_of(args: &[&str]) -> Flags {
    let m = cli().try_get_matches_from(args).unwrap();
    let (_, sub) = m.subcommand().unwrap();
    flags(sub)
}

#[test]
fn defaults_are_the_documented_ones() {
    let c = Config::resolve(&Flags::new(), &env(&[])).unwrap();
    assert_eq!(c.engine.data_dir, PathBuf::from("./data"));
    assert_eq!(c.edge.listen, "0.0.0.0:8080".parse().unwrap());
    assert_eq!(c.edge.admin_listen, "127.0.0.1:9090".parse().unwrap());
    assert_eq!(c.engine.issuer, "http://localhost:8080");
    assert_eq!(c.engine.refresh_reuse_grace, Duration::from_millis(2000));
    assert_eq!(c.engine.password_hash, HashScheme::default());
    assert_eq!(c.engine.access_ttl, Duration::from_secs(900));
    assert_eq!(c.edge.trusted_proxies, TrustedProxies::default());
    assert_eq!(c.engine.lockout, LockoutPolicy::default());
    assert_eq!(c.engine.signing_keys_dir, None);
    assert_eq!(c.edge.server.max_connections, 10_000);
    assert_eq!(c.edge.server.max_connections_per_ip, 256);
    let off = Config::resolve(
        &Flags::new(),
        &env(&[("PORTCULLIS_MAX_CONNECTIONS_PER_IP", "0")]),
    )
    .unwrap();
    assert_eq!(off.edge.server.max_connections_per_ip, 0);
}

#[test]
fn variables_override_defaults_and_flags_override_variables() {
    let e = env(&[
        ("PORTCULLIS_LISTEN", "127.0.0.1:1234"),
        ("PORTCULLIS_DATA_DIR", "/var/lib/portcullis"),
        ("PORTCULLIS_PASSWORD_HASH", "pbkdf2-sha256:i=600000"),
        ("PORTCULLIS_IP_RATE_LIMIT", "off"),
        ("PORTCULLIS_TRUSTED_PROXIES", "10.0.0.0/8"),
        (
            "PORTCULLIS_SIGNING_KEYS_DIR",
            "/etc/portcullis/signing-keys",
        ),
    ]);
    let c = Config::resolve(&Flags::new(), &e).unwrap();
    assert_eq!(
        c.engine.signing_keys_dir,
        Some(PathBuf::from("/etc/portcullis/signing-keys"))
    );
    assert_eq!(c.edge.listen, "127.0.0.1:1234".parse().unwrap());
    assert_eq!(c.engine.data_dir, PathBuf::from("/var/lib/portcullis"));
    assert_eq!(
        c.engine.password_hash,
        HashScheme::Pbkdf2Sha256 { i: 600_000 }
    );
    assert_eq!(c.edge.ip_rate_limit, RateSpec::Off);
    let f = flags_of(&["portcullis", "serve", "--listen", "127.0.0.1:4321"]);
    let c = Config::resolve(&f, &e).unwrap();
    assert_eq!(c.edge.listen, "127.0.0.1:4321".parse().unwrap());
}

#[test]
fn bad_values_name_the_flag_the_variable_and_the_value() {
    for (k, v) in [
        ("PORTCULLIS_LISTEN", "localhost"),
        ("PORTCULLIS_PASSWORD_HASH", "md5"),
        ("PORTCULLIS_IP_RATE_LIMIT", "lots"),
        ("PORTCULLIS_TRUSTED_PROXIES", "10.0.0.0/33"),
        ("PORTCULLIS_REFRESH_REUSE_GRACE_MS", "-1"),
        ("PORTCULLIS_ISSUER", "localhost:8080"),
        ("PORTCULLIS_ACCESS_TOKEN_TTL", "5x"),
        ("PORTCULLIS_LOG_FORMAT", "xml"),
    ] {
        let err = Config::resolve(&Flags::new(), &env(&[(k, v)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(k) && err.contains(v), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }
}

#[test]
fn help_lists_every_setting_with_its_variable() {
    let help = serve_command().render_long_help().to_string();
    for s in SETTINGS.iter() {
        assert!(help.contains(&format!("--{}", s.flag)), "{}", s.flag);
        assert!(help.contains(s.env), "{}", s.env);
    }
}

#[test]
fn durations() {
    assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
    assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
    assert_eq!(
        parse_duration("30d").unwrap(),
        Duration::from_secs(30 * 86_400)
    );
    assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
    assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
    assert!(parse_duration("").is_err());
    assert!(parse_duration("1y").is_err());
}

#[test]
fn the_token_store_is_chosen_by_flag_or_variable() {
    let c = Config::resolve(&Flags::new(), &env(&[])).unwrap();
    assert_eq!(c.engine.token_store, TokenStoreConfig::Embedded);
    let e = env(&[
        ("PORTCULLIS_TOKEN_STORE", "redis-cluster"),
        (
            "PORTCULLIS_REDIS_NODES",
            "redis://10.0.0.1:6379, redis://:secret@10.0.0.2:6379",
        ),
        ("PORTCULLIS_REDIS_WAIT_REPLICAS", "1"),
        ("PORTCULLIS_REDIS_COMMAND_TIMEOUT", "250ms"),
    ]);
    let c = Config::resolve(&Flags::new(), &e).unwrap();
    let TokenStoreConfig::RedisCluster(rc) = &c.engine.token_store else {
        panic!(
            "expected the Redis Cluster store, got {:?}",
            c.engine.token_store
        );
    };
    assert_eq!(
        rc.nodes,
        vec!["redis://10.0.0.1:6379", "redis://:secret@10.0.0.2:6379"]
    );
    assert_eq!(rc.key_prefix, "portcullis");
    assert_eq!(rc.wait_replicas, 1);
    assert_eq!(rc.command_timeout, Duration::from_millis(250));
    // The shared limit follows the per-IP limit.
    assert_eq!(
        c.engine.shared_rate_limit,
        Some(portcullis_engine::config::RateLimit {
            count: 10,
            period_ms: 1000,
            burst: 20
        })
    );
    let f = flags_of(&[
        "portcullis",
        "serve",
        "--token-store",
        "redis-cluster",
        "--redis-nodes",
        "redis://h1:6379",
    ]);
    let c = Config::resolve(&f, &env(&[])).unwrap();
    assert!(matches!(
        c.engine.token_store,
        TokenStoreConfig::RedisCluster(_)
    ));
}

#[test]
fn bad_token_store_settings_name_the_setting_and_hide_passwords() {
    let err = |pairs: &[(&str, &str)]| Config::resolve(&Flags::new(), &env(pairs)).unwrap_err().0;
    let e = err(&[("PORTCULLIS_TOKEN_STORE", "memcached")]);
    assert!(
        e.contains("PORTCULLIS_TOKEN_STORE") && e.contains("memcached"),
        "{e}"
    );
    let e = err(&[("PORTCULLIS_TOKEN_STORE", "redis-cluster")]);
    assert!(e.contains("PORTCULLIS_REDIS_NODES"), "{e}");
    let e = err(&[
        ("PORTCULLIS_TOKEN_STORE", "redis-cluster"),
        ("PORTCULLIS_REDIS_NODES", "http://:hunter2@h1:6379"),
    ]);
    assert!(
        e.contains("not a redis:// URL") && !e.contains("hunter2"),
        "{e}"
    );
    let e = err(&[
        ("PORTCULLIS_TOKEN_STORE", "redis-cluster"),
        ("PORTCULLIS_REDIS_NODES", "redis://h1:6379"),
        ("PORTCULLIS_REDIS_KEY_PREFIX", "a{b}"),
    ]);
    assert!(e.contains("redis-key-prefix"), "{e}");
}

#[test]
fn the_user_store_is_chosen_by_flag_or_variable_with_every_scylla_setting() {
    let c = Config::resolve(&Flags::new(), &env(&[])).unwrap();
    assert_eq!(c.engine.user_store, UserStoreConfig::Embedded);
    let e = env(&[
        ("PORTCULLIS_USER_STORE", "scylla"),
        ("PORTCULLIS_SCYLLA_NODES", "10.0.0.1:9042, 10.0.0.2:9042"),
        ("PORTCULLIS_SCYLLA_KEYSPACE", "auth_prod"),
        ("PORTCULLIS_SCYLLA_LOCAL_DC", "eu-west"),
        ("PORTCULLIS_SCYLLA_USERNAME", "portcullis"),
        ("PORTCULLIS_SCYLLA_PASSWORD", "s3cret"),
        ("PORTCULLIS_SCYLLA_TLS_CA", "/etc/scylla/ca.pem"),
        ("PORTCULLIS_SCYLLA_TLS_SERVER_NAME", "scylla.internal"),
        ("PORTCULLIS_SCYLLA_CONSISTENCY", "quorum"),
        ("PORTCULLIS_SCYLLA_REQUEST_TIMEOUT", "750ms"),
        ("PORTCULLIS_SCYLLA_SPECULATIVE_DELAY", "off"),
    ]);
    let c = Config::resolve(&Flags::new(), &e).unwrap();
    let UserStoreConfig::Scylla(sc) = &c.engine.user_store else {
        panic!("expected ScyllaDB, got {:?}", c.engine.user_store);
    };
    assert_eq!(sc.nodes, vec!["10.0.0.1:9042", "10.0.0.2:9042"]);
    assert_eq!(sc.keyspace, "auth_prod");
    assert_eq!(sc.local_dc.as_deref(), Some("eu-west"));
    assert_eq!(sc.username.as_deref(), Some("portcullis"));
    assert_eq!(sc.password.as_deref(), Some("s3cret"));
    let tls = sc.tls.as_ref().unwrap();
    assert_eq!(tls.ca_file, PathBuf::from("/etc/scylla/ca.pem"));
    assert_eq!(tls.server_name.as_deref(), Some("scylla.internal"));
    assert_eq!(
        sc.consistency,
        portcullis_storage::scylla::config::parse_consistency("quorum").unwrap()
    );
    assert_eq!(sc.request_timeout, Duration::from_millis(750));
    assert_eq!(sc.speculative_delay, None);
    // Replication defaults to the local datacenter, RF 3.
    assert_eq!(sc.replication, vec![("eu-west".to_owned(), 3)]);
    assert!(!format!("{:?}", c.engine).contains("s3cret"));

    let f = flags_of(&[
        "portcullis",
        "serve",
        "--user-store",
        "scylla",
        "--scylla-nodes",
        "h1:9042,h2:9042",
        "--scylla-keyspace",
        "portcullis",
        "--scylla-local-dc",
        "dc1",
    ]);
    let c = Config::resolve(&f, &env(&[])).unwrap();
    let UserStoreConfig::Scylla(sc) = &c.engine.user_store else {
        panic!("expected ScyllaDB");
    };
    assert_eq!(sc.nodes, vec!["h1:9042", "h2:9042"]);
    assert_eq!(sc.local_dc.as_deref(), Some("dc1"));
}

#[test]
fn bad_scylla_settings_name_the_setting() {
    let err = |pairs: &[(&str, &str)]| Config::resolve(&Flags::new(), &env(pairs)).unwrap_err().0;
    let e = err(&[("PORTCULLIS_USER_STORE", "postgres")]);
    assert!(
        e.contains("PORTCULLIS_USER_STORE") && e.contains("scylla"),
        "{e}"
    );
    let e = err(&[("PORTCULLIS_USER_STORE", "scylla")]);
    assert!(e.contains("PORTCULLIS_SCYLLA_NODES"), "{e}");
    let scylla = [
        ("PORTCULLIS_USER_STORE", "scylla"),
        ("PORTCULLIS_SCYLLA_NODES", "h1:9042"),
    ];
    for (key, value, needle) in [
        (
            "PORTCULLIS_SCYLLA_CONSISTENCY",
            "strong",
            "PORTCULLIS_SCYLLA_CONSISTENCY",
        ),
        (
            "PORTCULLIS_SCYLLA_SERIAL_CONSISTENCY",
            "local_quorum",
            "PORTCULLIS_SCYLLA_SERIAL_CONSISTENCY",
        ),
        (
            "PORTCULLIS_SCYLLA_REPLICATION",
            "dc1",
            "PORTCULLIS_SCYLLA_REPLICATION",
        ),
        (
            "PORTCULLIS_SCYLLA_TABLETS",
            "maybe",
            "PORTCULLIS_SCYLLA_TABLETS",
        ),
        ("PORTCULLIS_SCYLLA_KEYSPACE", "Bad-Name", "keyspace"),
        ("PORTCULLIS_SCYLLA_USERNAME", "lonely", "password"),
    ] {
        let mut pairs = scylla.to_vec();
        pairs.push((key, value));
        let e = err(&pairs);
        assert!(e.contains(needle), "{key}={value}: {e}");
    }
}

#[test]
fn migrate_takes_only_scylla_settings_and_print() {
    let m = cli()
        .try_get_matches_from([
            "portcullis",
            "migrate",
            "--print",
            "--scylla-keyspace",
            "ks1",
            "--scylla-replication",
            "dc1:3,dc2:2",
        ])
        .unwrap();
    let (name, sub) = m.subcommand().unwrap();
    assert_eq!(name, "migrate");
    assert!(sub.get_flag("print"));
    let sc = resolve_scylla(&flags(sub), &env(&[]), false).unwrap();
    assert_eq!(sc.keyspace, "ks1");
    assert_eq!(
        sc.replication,
        vec![("dc1".to_owned(), 3), ("dc2".to_owned(), 2)]
    );
    assert!(
        resolve_scylla(&flags(sub), &env(&[]), true).is_err(),
        "connecting needs nodes"
    );
    assert!(
        cli()
            .try_get_matches_from(["portcullis", "migrate", "--listen", "0.0.0.0:1"])
            .is_err(),
        "serve-only flags are not migrate's"
    );
}

#[test]
fn mail_settings_default_to_files_in_the_data_directory_and_take_smtp() {
    use portcullis_engine::mail::transport::{SmtpSecurity, TransportConfig};
    let c = Config::resolve(&Flags::new(), &env(&[("PORTCULLIS_DATA_DIR", "/srv/pc")])).unwrap();
    // None: the file transport in the engine's final data directory.
    assert_eq!(c.engine.account.transport, None);
    let e = env(&[("PORTCULLIS_MAIL_DIR", "/var/spool/portcullis")]);
    assert_eq!(
        Config::resolve(&Flags::new(), &e)
            .unwrap()
            .engine
            .account
            .transport,
        Some(TransportConfig::File(PathBuf::from(
            "/var/spool/portcullis"
        )))
    );
    assert!(c.engine.account.data_key.is_none());
    assert_eq!(c.engine.account.public_base_url, None);

    let e = env(&[
        ("PORTCULLIS_MAIL_TRANSPORT", "smtp"),
        ("PORTCULLIS_SMTP_HOST", "smtp.example.com"),
        ("PORTCULLIS_SMTP_SECURITY", "tls"),
        ("PORTCULLIS_SMTP_USERNAME", "mailer"),
        ("PORTCULLIS_SMTP_PASSWORD", "hunter2-smtp"),
        ("PORTCULLIS_MAIL_FROM", "Acme Login <login@acme.example>"),
        ("PORTCULLIS_PUBLIC_BASE_URL", "https://login.acme.example"),
        (
            "PORTCULLIS_DATA_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        ),
    ]);
    let c = Config::resolve(&Flags::new(), &e).unwrap();
    let Some(TransportConfig::Smtp(s)) = &c.engine.account.transport else {
        panic!("smtp expected");
    };
    assert_eq!(
        (s.host.as_str(), s.port, s.security),
        ("smtp.example.com", None, SmtpSecurity::Tls)
    );
    assert_eq!(s.username.as_deref(), Some("mailer"));
    assert_eq!(
        c.engine.account.mail_from,
        "Acme Login <login@acme.example>"
    );
    assert_eq!(
        c.engine.account.public_base_url.as_deref(),
        Some("https://login.acme.example")
    );
    // Secrets never show in Debug output.
    let shown = format!("{:?}", c.engine);
    assert!(
        !shown.contains("hunter2-smtp") && !shown.contains("AAECAwQF"),
        "{shown}"
    );

    for (k, v, needle) in [
        (
            "PORTCULLIS_MAIL_TRANSPORT",
            "pigeon",
            "expected file or smtp",
        ),
        (
            "PORTCULLIS_MAIL_FROM",
            "not a mailbox at all",
            "PORTCULLIS_MAIL_FROM",
        ),
        (
            "PORTCULLIS_SMTP_SECURITY",
            "ssl",
            "expected starttls, tls or none",
        ),
    ] {
        let mut pairs = vec![("PORTCULLIS_SMTP_HOST", "smtp.example.com")];
        pairs.push((k, v));
        if k != "PORTCULLIS_MAIL_TRANSPORT" {
            pairs.push(("PORTCULLIS_MAIL_TRANSPORT", "smtp"));
        }
        let err = Config::resolve(&Flags::new(), &env(&pairs))
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{k}={v}: {err}");
    }
    let err = Config::resolve(
        &Flags::new(),
        &env(&[("PORTCULLIS_MAIL_TRANSPORT", "smtp")]),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("PORTCULLIS_SMTP_HOST"), "{err}");
}

/// The README's configuration table names every setting once, with its
/// flag and its default, and nothing else.
#[test]
fn the_readme_table_is_the_settings() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start = readme
        .find("| variable | flag | default | |")
        .expect("the README's configuration table");
    let documented: Vec<(String, String, String)> = readme[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            let unquote = |c: &str| c.trim_matches('`').to_owned();
            let default = match cells[2] {
                "(none)" => String::new(),
                d => unquote(d),
            };
            (
                unquote(cells[0]),
                unquote(cells[1]).trim_start_matches("--").to_owned(),
                default,
            )
        })
        .collect();
    let settings: Vec<(String, String, String)> = SETTINGS
        .iter()
        .map(|s| (s.env.to_owned(), s.flag.to_owned(), s.default.to_owned()))
        .collect();
    let missing: Vec<_> = settings
        .iter()
        .filter(|s| !documented.contains(s))
        .collect();
    let extra: Vec<_> = documented
        .iter()
        .filter(|d| !settings.contains(d))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "README table and SETTINGS disagree.\nnot in the README (variable, flag, default): {missing:?}\nnot a setting: {extra:?}"
    );
    let mut seen = std::collections::HashSet::new();
    assert!(
        documented.iter().all(|d| seen.insert(d.0.clone())),
        "a variable is listed twice"
    );
}
