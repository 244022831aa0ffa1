//! The client's address: the TCP peer, or, when the peer is a trusted proxy,
//! the nearest untrusted address in `X-Forwarded-For`.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// CIDR ranges of proxies whose `X-Forwarded-For` is believed.
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

impl TrustedProxies {
    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client address for a request from `peer` with these
    /// `X-Forwarded-For` header values (in order).
    pub fn client_ip<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl Iterator<Item = &'a [u8]>,
    ) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        let mut hops: Vec<IpAddr> = Vec::new();
        for value in forwarded_for {
            let Ok(value) = std::str::from_utf8(value) else {
                return peer;
            };
            for item in value.split(',') {
                match item.trim().parse::<IpAddr>() {
                    Ok(ip) => hops.push(canonical(ip)),
                    // A malformed list cannot be trusted past this proxy.
                    Err(_) => return peer,
                }
            }
        }
        // Walk from the nearest hop outwards; the first untrusted address is the client.
        let mut client = peer;
        for ip in hops.into_iter().rev() {
            client = ip;
            if !self.contains(ip) {
                break;
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peers_are_the_client_whatever_they_claim() {
        let t: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        let xff = [&b"1.2.3.4"[..]];
        assert_eq!(
            t.client_ip(ip("203.0.113.5"), xff.into_iter()),
            ip("203.0.113.5")
        );
        let none = TrustedProxies::default();
        assert_eq!(
            none.client_ip(ip("10.1.1.1"), xff.into_iter()),
            ip("10.1.1.1")
        );
    }

    #[test]
    fn trusted_chains_are_walked_from_the_right() {
        let t: TrustedProxies = "10.0.0.0/8, 192.168.1.1".parse().unwrap();
        let xff = [&b"6.6.6.6, 198.51.100.9, 192.168.1.1"[..]];
        assert_eq!(
            t.client_ip(ip("10.0.0.2"), xff.into_iter()),
            ip("198.51.100.9")
        );
        let split = [&b"6.6.6.6"[..], &b"198.51.100.9"[..]];
        assert_eq!(
            t.client_ip(ip("10.0.0.2"), split.into_iter()),
            ip("198.51.100.9")
        );
        let all_trusted = [&b"10.0.0.7"[..]];
        assert_eq!(
            t.client_ip(ip("10.0.0.2"), all_trusted.into_iter()),
            ip("10.0.0.7")
        );
        let garbage = [&b"not-an-ip"[..]];
        assert_eq!(
            t.client_ip(ip("10.0.0.2"), garbage.into_iter()),
            ip("10.0.0.2")
        );
        assert_eq!(
            t.client_ip(ip("::ffff:10.0.0.2"), std::iter::empty()),
            ip("10.0.0.2")
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
