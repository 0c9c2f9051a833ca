//! Hostile snapshot files: the verification a restore runs before touching the live
//! database must reject them cleanly (SQLite opens them read-only, untrusted schema off).
#![no_main]
use charm_kv::crypto::seal::Sealer;
use charm_kv::EncryptKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("candidate.sqlite");
    std::fs::write(&path, data).unwrap();
    let key = EncryptKey::from_text("fuzz", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==", None).unwrap();
    let sealer = Sealer::new(&[key]).unwrap();
    let _ = charm_kv::sync::restore::verify(&path, &sealer, 1);
});
