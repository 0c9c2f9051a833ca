//! Build script: gives the shared library a SONAME on Linux (and the other ELF
//! systems), `libcharm_kv.so.<C ABI>` (the major version; `0.MINOR` before 1.0, where a
//! minor release may break the ABI, as cargo-c names it), so that programs linked against an
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
        // The C ABI is the crate's version (CHARM_KV_VERSION_* in include/charm_kv.h come
        // from the same numbers): its major, or 0.MINOR while the major is 0.
        let part = |name: &str| std::env::var(name).unwrap_or_else(|_| "0".into());
        let major = part("CARGO_PKG_VERSION_MAJOR");
        let abi = match major.as_str() {
            "0" => format!("0.{}", part("CARGO_PKG_VERSION_MINOR")),
            _ => major,
        };
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libcharm_kv.so.{abi}");
    }
}
