//! Build script: gives the shared library a SONAME on Linux (and the other ELF
//! systems), `libcharm_kv.so.<C ABI major>`, so that programs linked against an
//! installed `libcharm_kv.so` record the ABI they were built for and keep working when
//! a compatible release replaces the file (docs/releasing.md). Only the cdylib gets
//! the flag; the static library and the CLI are untouched.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let elf = matches!(
        os.as_str(),
        "linux" | "android" | "freebsd" | "netbsd" | "openbsd" | "dragonfly" | "illumos"
    );
    if elf {
        // The C ABI major is the crate's major version (CHARM_KV_VERSION_MAJOR in
        // include/charm_kv.h comes from the same number).
        let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libcharm_kv.so.{major}");
    }
}
