//! Request ids: a valid incoming `X-Request-Id` is echoed, else a new one is
//! made; logged with the request and returned in problem answers.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::problem::{EdgeError, problem};
use crate::server::{Handled, Request};

/// Longest accepted incoming `X-Request-Id`.
const REQUEST_ID_MAX: usize = 64;

/// Makes and checks request ids.
#[derive(Debug)]
pub(crate) struct RequestIds {
    seed: u64,
    counter: AtomicU64,
}

impl RequestIds {
    pub(crate) fn new() -> RequestIds {
        let mut seed = [0u8; 8];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed);
        RequestIds {
            seed: u64::from_le_bytes(seed),
            counter: AtomicU64::new(0),
        }
    }

    /// A problem answer under a new request id (requests that never reached a handler).
    pub(crate) fn answer(&self, err: EdgeError) -> Handled {
        let request_id = self.generate();
        Handled {
            response: problem(err, &request_id),
            request_id,
        }
    }

    pub(crate) fn generate(&self) -> String {
        // A bijective mix of a counter: unique in this process, not guessable in order.
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut x = n.wrapping_add(self.seed);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        format!("{x:016x}")
    }

    pub(crate) fn for_request(&self, req: &Request<'_>) -> String {
        match req.header("x-request-id") {
            Some(v)
                if !v.is_empty()
                    && v.len() <= REQUEST_ID_MAX
                    && v.iter().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':')
                    }) =>
            {
                // Checked ASCII above.
                String::from_utf8_lossy(v).into_owned()
            }
            _ => self.generate(),
        }
    }
}
