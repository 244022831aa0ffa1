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
}

#[test]
fn variables_override_defaults_and_flags_override_variables() {
    let e = env(&[
        ("PORTCULLIS_LISTEN", "127.0.0.1:1234"),
        ("PORTCULLIS_DATA_DIR", "/var/lib/portcullis"),
        ("PORTCULLIS_PASSWORD_HASH", "pbkdf2-sha256:i=600000"),
        ("PORTCULLIS_IP_RATE_LIMIT", "off"),
        ("PORTCULLIS_TRUSTED_PROXIES", "10.0.0.0/8"),
    ]);
    let c = Config::resolve(&Flags::new(), &e).unwrap();
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
    for s in SETTINGS {
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
