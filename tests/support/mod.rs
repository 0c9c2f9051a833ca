//! Shared helpers of the integration tests.
#![allow(dead_code)]

pub mod charm_server;
pub mod fake_ssh;
pub mod fault_proxy;

/// `jwt` with a broken signature: same claims (so it still looks fresh), rejected by
/// the server. The first signature character changes (the last one may carry only
/// padding bits, which base64 decoders ignore).
pub fn forge_jwt(jwt: &str) -> String {
    let sig = jwt.rfind('.').expect("a JWT") + 1;
    let mut forged = jwt.to_owned();
    let c = if jwt[sig..].starts_with('A') {
        "B"
    } else {
        "A"
    };
    forged.replace_range(sig..sig + 1, c);
    forged
}
