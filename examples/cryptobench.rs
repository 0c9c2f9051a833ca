//! Micro-benchmark of the row crypto (`cargo run --release --example cryptobench`).
use aes_siv::aead::KeyInit;
use charm_kv::crypto::seal::RowCipher;
use charm_kv::EncryptKey;
use std::time::Instant;

fn main() {
    let c = RowCipher::new(&EncryptKey::generate());
    let n = 200_000;
    let mut x = 0usize;
    let t = Instant::now();
    for i in 0..n {
        x += c.seal_key(&(i as u64).to_be_bytes()).len();
    }
    println!("seal_key {:?}/op", t.elapsed() / n);
    let mut siv = aes_siv::siv::Aes256Siv::new(&[7u8; 64].into());
    let t = Instant::now();
    for i in 0..n {
        x += siv
            .encrypt(&[] as &[&[u8]], &(i as u64).to_be_bytes())
            .unwrap()
            .len();
    }
    println!("pre-keyed siv encrypt {:?}/op", t.elapsed() / n);
    let sk = c.seal_key(b"0123456789abcdef");
    let v = c.seal_value(&sk, &[7u8; 100]);
    let t = Instant::now();
    for _ in 0..n {
        x += c.open_value(&sk, &v).unwrap().len();
    }
    println!("open_value {:?}/op", t.elapsed() / n);
    let t = Instant::now();
    for _ in 0..n {
        x += c.seal_value(&sk, &[7u8; 100]).len();
    }
    println!("seal_value {:?}/op", t.elapsed() / n);
    let t = Instant::now();
    for _ in 0..n {
        x += c.open_key(&sk).unwrap().len();
    }
    println!("open_key {:?}/op ({x})", t.elapsed() / n);
}
