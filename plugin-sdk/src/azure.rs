//! Helpers for plugins that talk to Azure through the host's `http` capability (the host
//! adds the token, retries throttled and failed requests, and honours proxies).

pub mod arm;
pub mod resources;
