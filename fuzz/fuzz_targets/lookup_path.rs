//! Hostile encrypted names in server listings.
#![no_main]
use charm_kv::crypto::lookup::decrypt_path;
use charm_kv::EncryptKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let key = EncryptKey::from_text("fuzz", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==", None).unwrap();
    let _ = decrypt_path(&[key], text);
});
