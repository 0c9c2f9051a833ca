//! Hostile legacy Badger backup streams from a server.
#![no_main]
use std::sync::OnceLock;

use charm_kv::crypto::seal::Sealer;
use charm_kv::sync::legacy::LegacyMerge;
use charm_kv::EncryptKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    static SEALER: OnceLock<Sealer> = OnceLock::new();
    let sealer = SEALER.get_or_init(|| Sealer::new(&[EncryptKey::generate()]).unwrap());
    let mut merge = LegacyMerge::in_memory(sealer).unwrap();
    if merge.add_stream(data).is_ok() {
        for (key, value) in merge.pairs().unwrap() {
            assert!(key.len() <= data.len() && value.len() <= data.len());
        }
    }
});
