//! [`Jwks`]: the JWK set, pre-rendered; answered on the calling thread.

use std::sync::Arc;

use crate::core::Engine;
use crate::error::AuthError;
use crate::ops::Operation;
use crate::responder::Responder;

/// The JWKS document.
pub struct Jwks;

impl Operation for Jwks {
    type Reply = Arc<[u8]>;

    fn submit(self, engine: &Engine, reply: Responder<Arc<[u8]>>) {
        let svc = &engine.core.token_svc;
        // No key loaded yet (start-up without the token store): an empty
        // key set, cached by a resource server, would refuse every good
        // token for minutes.
        if !svc.has_keys() {
            return reply.send(Err(AuthError::Unavailable {
                retry_after_secs: 1,
            }));
        }
        reply.send(Ok(svc.jwks()));
    }
}
