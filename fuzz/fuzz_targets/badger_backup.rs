//! Hostile legacy Badger backup streams from a server.
#![no_main]
use charm_kv::sync::legacy::LegacyMerge;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut merge = LegacyMerge::new();
    if merge.add_stream(data).is_ok() {
        for (key, value) in merge.pairs() {
            assert!(key.len() <= data.len() && value.len() <= data.len());
        }
    }
});
