//! The client's address: the TCP peer, or, when the peer is a trusted proxy,
//! the nearest untrusted hop named by the proxies, from RFC 7239 `Forwarded`
//! (preferred when present) or `X-Forwarded-For`.
//!
//! The hops are walked from the right (the nearest proxy) outwards, skipping
//! trusted proxies; the first untrusted entry is the client. Entries left of
//! it were written by the client or by proxies nobody vouches for, so they
//! are never examined: junk there cannot change the answer.
//!
//! The answer never falls back to a shared address. When the walk meets an
//! entry that is not an address (RFC 7239 `unknown` or an obfuscated
//! identifier like `_hidden`, or garbage a trusted proxy wrote) before an
//! untrusted address, that entry identifies the client: it is mapped to a
//! synthetic address in `fd00::/8` whose upper 64 bits come from SHA-256 of
//! the entry. The rate limiter keys IPv6 by /64, so each such identifier gets
//! its own bucket (and the same one every time), never the proxy's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;

/// Which forwarding header the trusted proxies write (and overwrite): only
/// that one is read, so a client cannot smuggle its own value through a
/// proxy that passes the other one on untouched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For` (most load balancers and ingress controllers).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded`.
    Forwarded,
}

impl FromStr for ForwardedHeader {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Ok(ForwardedHeader::XForwardedFor),
            "forwarded" => Ok(ForwardedHeader::Forwarded),
            _ => Err("expected x-forwarded-for or forwarded".into()),
        }
    }
}

/// CIDR ranges of proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl FromStr for TrustedProxies {
    type Err = String;

    /// A comma-separated list of CIDRs or addresses; empty for none.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut nets = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let net = match part.parse::<IpNet>() {
                Ok(n) => n,
                Err(_) => part
                    .parse::<IpAddr>()
                    .map(IpNet::from)
                    .map_err(|_| format!("'{part}' is not a CIDR range or an IP address"))?,
            };
            nets.push(net.trunc());
        }
        Ok(TrustedProxies(nets))
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// One hop named by a proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node<'a> {
    /// An address (any port dropped).
    Addr(IpAddr),
    /// Anything else: an obfuscated identifier, `unknown`, or garbage
    /// (without a port, where one could be told apart).
    Token(&'a [u8]),
}

impl TrustedProxies {
    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client address for a request from `peer` carrying these
    /// `Forwarded` and `X-Forwarded-For` header values (each in order).
    ///
    /// `Forwarded` wins when any of its elements has a `for=` parameter;
    /// `X-Forwarded-For` is then not read.
    pub fn client_ip<'a>(
        &self,
        peer: IpAddr,
        forwarded: impl Iterator<Item = &'a [u8]>,
        forwarded_for: impl Iterator<Item = &'a [u8]>,
    ) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        let mut hops: Vec<&[u8]> = Vec::new();
        for value in forwarded {
            forwarded_fors(value, &mut hops);
        }
        if hops.is_empty() {
            for value in forwarded_for {
                hops.extend(
                    value
                        .split(|&b| b == b',')
                        .map(<[u8]>::trim_ascii)
                        // Empty list elements are ignored (RFC 9110, 5.6.1).
                        .filter(|e| !e.is_empty()),
                );
            }
        }
        self.walk(peer, &hops)
    }

    /// Walks `hops` from the nearest outwards.
    fn walk(&self, peer: IpAddr, hops: &[&[u8]]) -> IpAddr {
        let mut client = peer;
        for hop in hops.iter().rev() {
            match node(hop) {
                Node::Addr(ip) => {
                    client = canonical(ip);
                    if !self.contains(client) {
                        return client;
                    }
                }
                Node::Token(t) => return token_address(t),
            }
        }
        // Every hop is a trusted proxy: the leftmost is the client.
        client
    }
}

/// Reads a node: `v4`, `v4:port`, `v6`, `[v6]`, `[v6]:port`, or a token.
fn node(raw: &[u8]) -> Node<'_> {
    let raw = raw.trim_ascii();
    let Ok(s) = std::str::from_utf8(raw) else {
        return Node::Token(raw);
    };
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Node::Addr(ip);
    }
    if let Some(inner) = s.strip_prefix('[') {
        if let Some((v6, rest)) = inner.split_once(']')
            && (rest.is_empty() || rest.starts_with(':'))
            && let Ok(ip) = v6.parse::<Ipv6Addr>()
        {
            return Node::Addr(IpAddr::V6(ip));
        }
        return Node::Token(raw);
    }
    match s.split_once(':') {
        // One colon: a node name and a port (numeric or RFC 7239 obfuscated).
        Some((name, port)) if !port.contains(':') => match name.parse::<Ipv4Addr>() {
            Ok(v4) => Node::Addr(IpAddr::V4(v4)),
            Err(_) => Node::Token(name.as_bytes()),
        },
        _ => Node::Token(raw),
    }
}

/// The synthetic address standing for a client known only by `token`:
/// `fd` followed by 56 bits of SHA-256 of the token, then zeros. The rate
/// limiter keys IPv6 by the upper 64 bits, so every token has its own bucket.
fn token_address(token: &[u8]) -> IpAddr {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"portcullis client token\0");
    ctx.update(token);
    let digest = ctx.finish();
    let mut octets = [0u8; 16];
    octets[0] = 0xfd;
    octets[1..8].copy_from_slice(&digest.as_ref()[..7]);
    IpAddr::V6(Ipv6Addr::from(octets))
}

/// Appends the `for=` value of each element of one `Forwarded` header value
/// (RFC 7239: `for=192.0.2.43;proto=https, for="[2001:db8::1]:80"`).
/// Parameter names are case-insensitive; values may be quoted strings.
/// Elements without `for=` name no hop and are skipped.
fn forwarded_fors<'a>(value: &'a [u8], hops: &mut Vec<&'a [u8]>) {
    let mut i = 0;
    let mut found: Option<&'a [u8]> = None;
    while i < value.len() {
        // A parameter name, up to '=', ';' or ','.
        let start = i;
        while i < value.len() && !matches!(value[i], b'=' | b';' | b',') {
            i += 1;
        }
        let name = value[start..i].trim_ascii();
        let mut param_value: Option<&'a [u8]> = None;
        if i < value.len() && value[i] == b'=' {
            i += 1;
            while i < value.len() && matches!(value[i], b' ' | b'\t') {
                i += 1;
            }
            if i < value.len() && value[i] == b'"' {
                // A quoted string; the escapes RFC 7230 allows never occur
                // in a node, so the bytes between the quotes are the value.
                i += 1;
                let vstart = i;
                while i < value.len() && value[i] != b'"' {
                    i += if value[i] == b'\\' { 2 } else { 1 };
                }
                let vend = i.min(value.len());
                param_value = Some(&value[vstart..vend]);
                i = (i + 1).min(value.len());
                while i < value.len() && !matches!(value[i], b';' | b',') {
                    i += 1;
                }
            } else {
                let vstart = i;
                while i < value.len() && !matches!(value[i], b';' | b',') {
                    i += 1;
                }
                param_value = Some(value[vstart..i].trim_ascii());
            }
        }
        if found.is_none() && name.eq_ignore_ascii_case(b"for") {
            found = param_value;
        }
        if i >= value.len() || value[i] == b',' {
            // End of an element.
            if let Some(f) = found.take() {
                hops.push(f);
            }
        }
        i += 1;
    }
    if let Some(f) = found {
        hops.push(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(t: &TrustedProxies, peer: &str, values: &[&str]) -> IpAddr {
        t.client_ip(
            ip(peer),
            std::iter::empty(),
            values.iter().map(|v| v.as_bytes()),
        )
    }

    fn fwd(t: &TrustedProxies, peer: &str, values: &[&str]) -> IpAddr {
        t.client_ip(
            ip(peer),
            values.iter().map(|v| v.as_bytes()),
            std::iter::empty(),
        )
    }

    fn key(ip: IpAddr) -> IpAddr {
        portcullis_engine::domain::rate_limit_key(ip)
    }

    fn is_synthetic(ip: IpAddr) -> bool {
        matches!(ip, IpAddr::V6(v6) if v6.octets()[0] == 0xfd && v6.segments()[4..] == [0; 4])
    }

    #[test]
    fn untrusted_peers_are_the_client_whatever_they_claim() {
        let t: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        assert_eq!(xff(&t, "203.0.113.5", &["1.2.3.4"]), ip("203.0.113.5"));
        assert_eq!(fwd(&t, "203.0.113.5", &["for=1.2.3.4"]), ip("203.0.113.5"));
        let none = TrustedProxies::default();
        assert_eq!(xff(&none, "10.1.1.1", &["1.2.3.4"]), ip("10.1.1.1"));
    }

    #[test]
    fn trusted_chains_are_walked_from_the_right() {
        let t: TrustedProxies = "10.0.0.0/8, 192.168.1.1".parse().unwrap();
        assert_eq!(
            xff(&t, "10.0.0.2", &["6.6.6.6, 198.51.100.9, 192.168.1.1"]),
            ip("198.51.100.9")
        );
        assert_eq!(
            xff(&t, "10.0.0.2", &["6.6.6.6", "198.51.100.9"]),
            ip("198.51.100.9")
        );
        assert_eq!(xff(&t, "10.0.0.2", &["10.0.0.7"]), ip("10.0.0.7"));
        assert_eq!(
            xff(&t, "10.0.0.2", &["10.0.0.9, 10.0.0.7"]),
            ip("10.0.0.9"),
            "all trusted: the leftmost"
        );
        assert_eq!(xff(&t, "::ffff:10.0.0.2", &[]), ip("10.0.0.2"));
        assert_eq!(
            xff(&t, "10.0.0.2", &["::ffff:198.51.100.9"]),
            ip("198.51.100.9")
        );
        assert_eq!(
            xff(&t, "10.0.0.2", &[" , 198.51.100.9 ,"]),
            ip("198.51.100.9")
        );
    }

    #[test]
    fn junk_left_of_the_client_is_never_read() {
        let t: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        for junk in ["junk", "not an ip", "[::1", "\u{7f}", "1.2.3.4.5", "_x"] {
            assert_eq!(
                xff(&t, "10.0.0.2", &[&format!("{junk}, 203.0.113.7")]),
                ip("203.0.113.7"),
                "{junk}"
            );
            assert_eq!(
                xff(&t, "10.0.0.2", &[junk, "203.0.113.7, 10.0.0.3"]),
                ip("203.0.113.7"),
                "{junk}"
            );
        }
        let bytes = t.client_ip(
            ip("10.0.0.2"),
            std::iter::empty(),
            [&b"\xff\xfe, 203.0.113.7"[..]].into_iter(),
        );
        assert_eq!(bytes, ip("203.0.113.7"));
    }

    #[test]
    fn addresses_with_ports_and_brackets() {
        let t: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        for (entry, want) in [
            ("203.0.113.7", "203.0.113.7"),
            ("203.0.113.7:5000", "203.0.113.7"),
            ("2001:db8:1::1", "2001:db8:1::1"),
            ("[2001:db8:1::1]", "2001:db8:1::1"),
            ("[2001:db8:1::1]:5000", "2001:db8:1::1"),
            ("[::ffff:203.0.113.7]:1", "203.0.113.7"),
        ] {
            assert_eq!(xff(&t, "10.0.0.2", &[entry]), ip(want), "{entry}");
        }
        let a = xff(&t, "10.0.0.2", &["[2001:db8:1::1]:5000"]);
        let b = xff(&t, "10.0.0.2", &["[2001:db8:2::1]:6000"]);
        assert_ne!(key(a), key(b), "two clients, two buckets");
        assert_ne!(key(a), key(ip("10.0.0.2")));
        // A trusted proxy written with a port is still skipped.
        assert_eq!(
            xff(&t, "10.0.0.2", &["198.51.100.1, 10.0.0.9:443"]),
            ip("198.51.100.1")
        );
        assert_eq!(
            xff(&t, "10.0.0.2", &["198.51.100.1, [::ffff:10.0.0.9]:443"]),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn forwarded_parameters_quotes_case_and_lists() {
        let t: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        for (value, want) in [
            ("for=198.51.100.9", "198.51.100.9"),
            ("For=198.51.100.9", "198.51.100.9"),
            ("FOR = 198.51.100.9", "198.51.100.9"),
            (r#"for="[2001:db8:3::1]:80""#, "2001:db8:3::1"),
            (r#"for="[2001:db8:3::1]""#, "2001:db8:3::1"),
            ("for=198.51.100.9:_port", "198.51.100.9"),
            ("proto=https;for=198.51.100.9;by=10.0.0.2", "198.51.100.9"),
            (
                r#"for=6.6.6.6, for="198.51.100.9";proto=http, for=10.0.0.5"#,
                "198.51.100.9",
            ),
            (r#"for="a,b;c", for=198.51.100.9"#, "198.51.100.9"),
            ("for=198.51.100.9, proto=https", "198.51.100.9"),
            ("for=198.51.100.9;", "198.51.100.9"),
        ] {
            assert_eq!(fwd(&t, "10.0.0.2", &[value]), ip(want), "{value}");
        }
        // Several headers, in order.
        assert_eq!(
            fwd(&t, "10.0.0.2", &["for=198.51.100.9", "for=10.0.0.5"]),
            ip("198.51.100.9")
        );
        assert_eq!(
            fwd(&t, "10.0.0.2", &["for=10.0.0.9", "for=10.0.0.5"]),
            ip("10.0.0.9")
        );
    }

    #[test]
    fn forwarded_is_preferred_over_x_forwarded_for() {
        let t: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        let both = t.client_ip(
            ip("10.0.0.2"),
            [&b"for=198.51.100.9"[..]].into_iter(),
            [&b"203.0.113.7"[..]].into_iter(),
        );
        assert_eq!(both, ip("198.51.100.9"));
        // A Forwarded header naming no hop does not hide X-Forwarded-For.
        let no_for = t.client_ip(
            ip("10.0.0.2"),
            [&b"proto=https"[..]].into_iter(),
            [&b"203.0.113.7"[..]].into_iter(),
        );
        assert_eq!(no_for, ip("203.0.113.7"));
    }

    #[test]
    fn identifiers_and_garbage_get_their_own_bucket_never_the_proxys() {
        let t: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        let hidden = fwd(&t, "10.0.0.2", &["for=_hidden"]);
        let hidden_port = fwd(&t, "10.0.0.2", &[r#"for="_hidden:_p1""#]);
        let other = fwd(&t, "10.0.0.2", &["for=_other"]);
        let unknown = fwd(&t, "10.0.0.2", &["for=unknown"]);
        let garbage = xff(&t, "10.0.0.2", &["garbage, 10.0.0.3"]);
        for c in [hidden, other, unknown, garbage] {
            assert!(is_synthetic(c), "{c}");
            assert_ne!(key(c), key(ip("10.0.0.2")));
        }
        assert_eq!(
            hidden, hidden_port,
            "the obfuscated port is not part of the key"
        );
        assert_eq!(hidden, fwd(&t, "10.0.0.2", &["for=_hidden"]), "stable");
        assert_ne!(key(hidden), key(other));
        assert_ne!(key(hidden), key(unknown));
        // An untrusted address right of the token is the client; the token is left of it.
        assert_eq!(
            fwd(&t, "10.0.0.2", &["for=_hidden, for=198.51.100.9"]),
            ip("198.51.100.9")
        );
        assert_eq!(
            xff(&t, "10.0.0.2", &["[2001:db8::1"]),
            token_address(b"[2001:db8::1")
        );
    }

    #[test]
    fn parse_errors_name_the_bad_entry() {
        let e = "10.0.0.0/8, nope".parse::<TrustedProxies>().unwrap_err();
        assert!(e.contains("nope"));
        assert_eq!(
            "".parse::<TrustedProxies>().unwrap(),
            TrustedProxies::default()
        );
    }
}
