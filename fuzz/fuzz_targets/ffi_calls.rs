//! Random sequences of C ABI calls with random lengths, NULL pointers and pointers into
//! valid buffers, against one store per process: statuses must match what the contract
//! says, and nothing may crash.
#![no_main]
use std::ffi::CString;
use std::ptr;
use std::sync::OnceLock;

use charm_kv::ffi::*;
use libfuzzer_sys::fuzz_target;

/// The store and the folder it lives in, alive for the whole process.
struct Store(*mut charm_kv_store, #[allow(dead_code)] tempfile::TempDir);
// SAFETY: a charm_kv_store is documented thread-safe; the fuzzer only shares the handle.
unsafe impl Send for Store {}
// SAFETY: as above.
unsafe impl Sync for Store {}

fn store() -> &'static Store {
    static STORE: OnceLock<Store> = OnceLock::new();
    STORE.get_or_init(|| {
        let folder = tempfile::tempdir().unwrap();
        let dir = CString::new(folder.path().to_str().unwrap()).unwrap();
        let key = b"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";
        let name = CString::new("fuzz").unwrap();
        let mut options = ptr::null_mut();
        let mut store = ptr::null_mut();
        // SAFETY: every pointer is valid for the call; outputs are written on OK.
        unsafe {
            assert_eq!(charm_kv_options_new(&mut options, ptr::null_mut()), charm_kv_status::Ok);
            assert_eq!(charm_kv_options_set_data_dir(options, dir.as_ptr(), ptr::null_mut()), charm_kv_status::Ok);
            assert_eq!(charm_kv_options_set_encrypt_key(options, key.as_ptr(), key.len(), ptr::null_mut()), charm_kv_status::Ok);
            assert_eq!(charm_kv_store_open(name.as_ptr(), options, &mut store, ptr::null_mut()), charm_kv_status::Ok);
            charm_kv_options_free(options);
        }
        Store(store, folder)
    })
}

/// A pointer and a length the fuzzer chose: into `data`, or NULL with any length.
fn slice(data: &[u8], at: usize, len: usize, null: bool) -> (*const u8, usize, bool) {
    if null {
        return (ptr::null(), len, len == 0);
    }
    let start = at.min(data.len());
    let len = len.min(data.len() - start);
    (data[start..].as_ptr(), len, true)
}

fuzz_target!(|data: &[u8]| {
    let store = store().0;
    let mut ops = data.chunks(6);
    for op in ops.by_ref().take(64) {
        if op.len() < 6 {
            break;
        }
        let (kind, at, len, null) = (op[0] % 7, op[1] as usize * 7, u16::from_le_bytes([op[2], op[3]]) as usize, op[4] & 1 == 1);
        let (key, key_len, key_ok) = slice(data, at, len % 300, null);
        // A range's prefix may be empty (every key); the empty key is refused, as
        // Charm's kv refuses it.
        let prefix_ok = key_ok;
        let key_ok = key_ok && key_len > 0;
        let (val, val_len, val_ok) = slice(data, at / 2, len, op[5] & 1 == 1);
        let range = charm_kv_range {
            prefix: charm_kv_slice { data: key, len: key_len },
            start: charm_kv_slice { data: val, len: if op[5] & 4 == 4 { val_len % 300 } else { 0 } },
            reverse: op[4] & 2 == 2,
        };
        let range_ok = prefix_ok && (val_ok || range.start.len == 0);
        // A caller's buffer for charm_kv_store_get_into: any capacity, or NULL with it.
        let mut buf = vec![0u8; len % 256];
        let (buf_ptr, buf_ok) = if op[5] & 1 == 1 { (ptr::null_mut(), buf.is_empty()) } else { (buf.as_mut_ptr(), true) };
        let mut err = ptr::null_mut();
        // SAFETY: pointers are NULL or point into `data` for their length; out-params
        // are valid locals; every object is freed below.
        unsafe {
            let status = match kind {
                0 => charm_kv_store_set(store, charm_kv_slice { data: key, len: key_len }, charm_kv_slice { data: val, len: val_len }, &mut err),
                1 => {
                    let mut out = charm_kv_bytes { data: ptr::null_mut(), len: 0 };
                    let s = charm_kv_store_get(store, key, key_len, &mut out, &mut err);
                    charm_kv_bytes_free(&mut out);
                    s
                }
                2 => charm_kv_store_delete(store, key, key_len, &mut err),
                3 => {
                    let mut batch = ptr::null_mut();
                    let mut s = charm_kv_batch_begin(store, &mut batch, &mut err);
                    if s == charm_kv_status::Ok {
                        s = charm_kv_batch_set(batch, charm_kv_slice { data: key, len: key_len }, charm_kv_slice { data: val, len: val_len }, &mut err);
                        if s == charm_kv_status::Ok {
                            s = charm_kv_batch_commit(batch, &mut err);
                        } else {
                            charm_kv_batch_free(batch);
                        }
                    }
                    s
                }
                4 => {
                    let mut iter = ptr::null_mut();
                    let s = charm_kv_iter_new(store, &range, op[5] & 2 == 2, &mut iter, &mut err);
                    if s == charm_kv_status::Ok {
                        for _ in 0..(len % 16) {
                            let mut k = charm_kv_slice { data: ptr::null(), len: 0 };
                            let (mut v, mut has) = (k, false);
                            let s = charm_kv_iter_next(iter, &mut k, &mut v, &mut has, ptr::null_mut());
                            assert_eq!(s, charm_kv_status::Ok);
                            if !has {
                                break;
                            }
                        }
                        charm_kv_iter_free(iter);
                    }
                    s
                }
                6 => {
                    let large = charm_kv_bytes { data: ptr::null_mut(), len: 0 };
                    let mut out = charm_kv_value_buf { data: buf_ptr, cap: buf.len(), len: 0, large };
                    let s = charm_kv_store_get_into(store, key, key_len, &mut out, &mut err);
                    if s == charm_kv_status::Ok {
                        assert_eq!(out.large.data.is_null(), out.len <= buf.len());
                    }
                    charm_kv_bytes_free(&mut out.large);
                    s
                }
                _ => {
                    let mut list = std::mem::zeroed::<charm_kv_bytes_list>();
                    let s = if op[5] & 8 == 8 {
                        charm_kv_store_keys_in(store, &range, &mut list, &mut err)
                    } else {
                        charm_kv_store_keys(store, &mut list, &mut err)
                    };
                    charm_kv_bytes_list_free(&mut list);
                    s
                }
            };
            let (needs_key, needs_value) = (kind <= 3 || kind == 6, matches!(kind, 0 | 3));
            let needs_range = kind == 4 || (kind == 5 && op[5] & 8 == 8);
            if (needs_key && !key_ok) || (needs_value && !val_ok) || (kind == 6 && !buf_ok) || (needs_range && !range_ok) {
                assert_eq!(status, charm_kv_status::InvalidArgument);
            } else {
                assert!(matches!(
                    status,
                    charm_kv_status::Ok | charm_kv_status::NotFound
                ), "{status:?}");
            }
            charm_kv_error_free(err);
        }
    }
});
