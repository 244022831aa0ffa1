//! What every endpoint handler is given: the bridge to the engine, the
//! per-IP limits, the trusted proxies (to find the client's address), and
//! the pre-rendered documents.

use std::sync::Arc;

use portcullis_engine::ClientInfo;

use crate::bridge::Bridge;
use crate::clientip::{ForwardedHeader, TrustedProxies};
use crate::ratelimit::IpLimits;
use crate::server::Request;

/// Longest `User-Agent` kept.
const USER_AGENT_MAX: usize = 256;

/// Pre-rendered documents.
#[derive(Debug)]
pub struct Documents {
    /// `/openapi.json`.
    pub openapi: Arc<[u8]>,
    /// `/.well-known/openid-configuration`.
    pub discovery: Arc<[u8]>,
}

/// The API's state, as its handlers see it.
#[derive(Debug)]
pub struct App {
    pub(crate) bridge: Bridge,
    pub(crate) limits: IpLimits,
    pub(crate) proxies: TrustedProxies,
    pub(crate) forwarded_header: ForwardedHeader,
    pub(crate) docs: Documents,
}

impl App {
    /// The API's state.
    pub fn new(
        bridge: Bridge,
        limits: IpLimits,
        proxies: TrustedProxies,
        forwarded_header: ForwardedHeader,
        docs: Documents,
    ) -> App {
        App {
            bridge,
            limits,
            proxies,
            forwarded_header,
            docs,
        }
    }

    /// Forgets recovered rate-limit entries (called periodically).
    pub fn sweep(&self) {
        self.limits.sweep();
    }

    pub(crate) fn client(&self, req: &Request<'_>) -> ClientInfo {
        ClientInfo {
            ip: Some(self.client_ip(req)),
            user_agent: req.header("user-agent").map(|ua| {
                String::from_utf8_lossy(ua)
                    .chars()
                    .take(USER_AGENT_MAX)
                    .collect()
            }),
        }
    }

    pub(crate) fn client_ip(&self, req: &Request<'_>) -> std::net::IpAddr {
        // Only the header the proxies are configured to write is read.
        let (forwarded, x_forwarded_for) = match self.forwarded_header {
            ForwardedHeader::Forwarded => ("forwarded", ""),
            ForwardedHeader::XForwardedFor => ("", "x-forwarded-for"),
        };
        self.proxies.client_ip(
            req.peer.ip(),
            req.headers_named(forwarded),
            req.headers_named(x_forwarded_for),
        )
    }
}
