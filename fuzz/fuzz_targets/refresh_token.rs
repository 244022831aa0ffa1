//! Opaque tokens as presented by clients: refresh tokens
//! (`engine/src/tokens/refresh.rs` `parse`), the mailed single-use tokens
//! of every purpose (`onetime.rs` `parse`) and device tokens (`device.rs`
//! `verify`, under a fixed key so the corpus' real token verifies).
//!
//! Checked: nothing panics; a refresh token that parses is the one text
//! `encode` gives for its parts (one text per token, so no two texts name
//! the same secret) and is its own chain's current token; a single-use
//! token parses for exactly the purpose of its prefix, has the one
//! well-formed length, and matches no pending entry when there is none; a
//! device token that verifies is the one text `issue` gives for it.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use portcullis_engine::tokens::device::DeviceKey;
use portcullis_engine::tokens::onetime::{self, Purpose};
use portcullis_engine::tokens::refresh::{self, Chain, Lineage};

const PURPOSES: [Purpose; 4] = [
    Purpose::VerifyEmail,
    Purpose::PasswordReset,
    Purpose::EmailChange,
    Purpose::MfaLogin,
];

/// A fixed device-token key (the corpus' token is signed with it).
static DEVICE: LazyLock<DeviceKey> = LazyLock::new(|| DeviceKey::from_secret(&[7; 32]));

fuzz_target!(|data: &[u8]| {
    let token = String::from_utf8_lossy(data);
    if let Some(d) = DEVICE.verify(&token) {
        assert_eq!(
            DEVICE.issue(&d).as_str(),
            &*token,
            "two texts for one device token"
        );
    }
    if let Some(p) = refresh::parse(&token) {
        let again = refresh::encode(p.user_id, p.session_id, p.generation, &p.secret);
        assert_eq!(again.as_str(), &*token, "two texts for one refresh token");
        assert!(token.len() <= refresh::MAX_TOKEN_LEN);
        let chain = Chain::new(&[7; 32]);
        assert_eq!(chain.lineage(&p, &p.hash(), p.generation), Lineage::Current);
        assert_eq!(
            chain.lineage(&p, &p.hash(), p.generation.wrapping_sub(1)),
            Lineage::Unknown,
            "a token is not the current one of an earlier generation"
        );
    }
    for purpose in PURPOSES {
        let Some(t) = onetime::parse(purpose, &token) else {
            continue;
        };
        assert!(token.starts_with(purpose.prefix()));
        assert_eq!(token.len(), onetime::MAX_TOKEN_LEN);
        assert_eq!(
            &token[purpose.prefix().len()..purpose.prefix().len() + 22],
            t.user_id.to_b64(),
            "two texts for one user id"
        );
        assert!(!t.matches(None, 0));
        for other in PURPOSES.into_iter().filter(|o| *o != purpose) {
            assert!(
                onetime::parse(other, &token).is_none(),
                "one token, two purposes"
            );
        }
    }
});
