//! Hostile `charm.sh/v1` files: any bytes must give plaintext or an error, never a
//! panic, a hang or unbounded memory.
#![no_main]
use charm_kv::crypto::sasquatch::{decrypt, Identity};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let identities = [Identity::scrypt(b"charm-kv fuzz password")];
    let _ = decrypt(data, &identities);
});
