//! Operating the service: probes and the API description.

pub mod docs;
pub mod healthz;
pub mod openapi;
pub mod readyz;
