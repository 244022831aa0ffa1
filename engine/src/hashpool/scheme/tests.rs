use super::*;

const CHEAP: HashScheme = HashScheme::Argon2id { m: 64, t: 1, p: 1 };

#[test]
fn parses_and_prints_settings() {
    assert_eq!(
        "argon2id:m=19456,t=2,p=1".parse::<HashScheme>().unwrap(),
        HashScheme::default()
    );
    assert_eq!(
        "pbkdf2-sha256:i=600000".parse::<HashScheme>().unwrap(),
        HashScheme::Pbkdf2Sha256 { i: 600_000 }
    );
    assert_eq!(
        "argon2id".parse::<HashScheme>().unwrap(),
        HashScheme::default(),
        "missing parameters take the OWASP defaults"
    );
    let s = HashScheme::Argon2id {
        m: 65536,
        t: 3,
        p: 4,
    };
    assert_eq!(s.to_string().parse::<HashScheme>().unwrap(), s);
    for bad in [
        "md5",
        "argon2id:m=abc",
        "argon2id:m=1,t=1,p=1",
        "argon2id:q=1",
        "argon2id:m=19456,m=19456",
        "pbkdf2-sha256:i=0",
        "argon2id:m",
    ] {
        let e = bad.parse::<HashScheme>().unwrap_err().to_string();
        assert!(e.contains(bad), "error names the input: {e}");
    }
}

#[test]
fn owasp_minimum() {
    assert!(HashScheme::default().meets_owasp_minimum());
    assert!(HashScheme::Pbkdf2Sha256 { i: 600_000 }.meets_owasp_minimum());
    assert!(!CHEAP.meets_owasp_minimum());
    assert!(!HashScheme::Pbkdf2Sha256 { i: 1000 }.meets_owasp_minimum());
}

#[test]
fn argon2_and_pbkdf2_round_trip_and_reject_wrong_passwords() {
    let rng = SystemRandom::new();
    let mut mem = Vec::new();
    for scheme in [CHEAP, HashScheme::Pbkdf2Sha256 { i: 1000 }] {
        let phc = hash_password(&scheme, b"correct horse", &rng, &mut mem).unwrap();
        let stored = StoredHash::parse(&phc).unwrap();
        assert!(stored.verify(b"correct horse", &mut mem));
        assert!(!stored.verify(b"correct horsE", &mut mem));
        assert!(!stored.verify(b"", &mut mem));
        assert!(!stored.needs_rehash(&scheme));
    }
}

#[test]
fn known_argon2id_vector_verifies() {
    // Produced by the reference implementation:
    // echo -n password | argon2 somesalt -id -t 2 -m 16 -p 1 -l 32 -e
    let phc =
        "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
    let stored = StoredHash::parse(phc).unwrap();
    let mut mem = Vec::new();
    assert!(stored.verify(b"password", &mut mem));
    assert!(!stored.verify(b"passwore", &mut mem));
}

#[test]
fn bcrypt_is_verify_only_and_always_rehashed() {
    let h = bcrypt::hash("hunter22", 4).unwrap();
    let stored = StoredHash::parse(&h).unwrap();
    let mut mem = Vec::new();
    assert!(stored.verify(b"hunter22", &mut mem));
    assert!(!stored.verify(b"hunter23", &mut mem));
    assert!(stored.needs_rehash(&HashScheme::default()));
}

#[test]
fn rehash_when_parameters_differ() {
    let rng = SystemRandom::new();
    let mut mem = Vec::new();
    let phc = hash_password(&CHEAP, b"pw", &rng, &mut mem).unwrap();
    let stored = StoredHash::parse(&phc).unwrap();
    assert!(stored.needs_rehash(&HashScheme::Argon2id { m: 128, t: 1, p: 1 }));
    assert!(stored.needs_rehash(&HashScheme::Pbkdf2Sha256 { i: 1000 }));
}

#[test]
fn malformed_and_unknown_hashes_are_errors() {
    assert_eq!(
        StoredHash::parse("plaintext"),
        Err(StoredHashError::Unsupported)
    );
    assert_eq!(
        StoredHash::parse("$md5$abc"),
        Err(StoredHashError::Unsupported)
    );
    for bad in [
        "$argon2id$v=16$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        "$argon2id$v=19$m=64,t=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        "$argon2id$v=19$m=64,t=1,p=1$!!$aGFzaGhhc2hoYXNoaGFzaA",
        "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA$extra",
        "$pbkdf2-sha256$i=0$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        "$2b$04$short",
    ] {
        assert!(
            matches!(StoredHash::parse(bad), Err(StoredHashError::Malformed(_))),
            "{bad}"
        );
    }
}
