//! The committed C header `include/charm_kv.h` must be exactly what the pinned cbindgen
//! generates from `src/ffi/`, carry the crate's version, and document every item.

use std::path::{Path, PathBuf};
use std::process::Command;

const CBINDGEN_VERSION: &str = "0.29.4";
const HEADER: &str = "include/charm_kv.h";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn committed_header() -> String {
    std::fs::read_to_string(root().join(HEADER)).expect("include/charm_kv.h is missing")
}

/// The pinned cbindgen: `$CBINDGEN`, else `cbindgen` on PATH, else `~/.cargo/bin`.
fn cbindgen() -> PathBuf {
    let install = format!("cargo install --locked cbindgen --version {CBINDGEN_VERSION}");
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(path) = std::env::var_os("CBINDGEN") {
        candidates.push(path.into());
    }
    candidates.push("cbindgen".into());
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(Path::new(&home).join(".cargo/bin/cbindgen"));
    }
    for candidate in &candidates {
        let Ok(output) = Command::new(candidate).arg("--version").output() else {
            continue;
        };
        let version = String::from_utf8_lossy(&output.stdout);
        assert!(
            version.trim() == format!("cbindgen {CBINDGEN_VERSION}"),
            "{} is {:?}, but the header is generated with cbindgen {CBINDGEN_VERSION} \
             (other versions format differently). Install it with: {install}",
            candidate.display(),
            version.trim(),
        );
        return candidate.clone();
    }
    panic!("cbindgen {CBINDGEN_VERSION} is not installed (set CBINDGEN to its path, or install it with: {install})");
}

#[test]
fn header_is_what_cbindgen_generates() {
    let out = tempfile::tempdir().unwrap();
    let generated = out.path().join("charm_kv.h");
    let result = Command::new(cbindgen())
        .current_dir(root())
        .args(["--quiet", "--config", "cbindgen.toml", "--output"])
        .arg(&generated)
        .output()
        .expect("running cbindgen");
    assert!(
        result.status.success(),
        "cbindgen failed:\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let generated = std::fs::read_to_string(&generated).unwrap();
    if generated != committed_header() {
        let first = generated
            .lines()
            .zip(committed_header().lines())
            .position(|(a, b)| a != b)
            .map_or_else(|| "at the end".to_owned(), |i| format!("at line {}", i + 1));
        panic!(
            "{HEADER} is stale (first difference {first}). Regenerate it with:\n  \
             cbindgen --config cbindgen.toml --output {HEADER}"
        );
    }
}

/// The value of `#define NAME value` in the header.
fn define(header: &str, name: &str) -> String {
    let prefix = format!("#define {name} ");
    header
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{HEADER} has no {name}"))
        .trim()
        .to_owned()
}

#[test]
fn header_version_is_the_crate_version() {
    let header = committed_header();
    let fix = "update the version defines in cbindgen.toml (after_includes) and regenerate";
    for (name, cargo) in [
        ("CHARM_KV_VERSION_MAJOR", env!("CARGO_PKG_VERSION_MAJOR")),
        ("CHARM_KV_VERSION_MINOR", env!("CARGO_PKG_VERSION_MINOR")),
        ("CHARM_KV_VERSION_PATCH", env!("CARGO_PKG_VERSION_PATCH")),
    ] {
        assert_eq!(define(&header, name), cargo, "{name}: {fix}");
    }
    assert_eq!(
        define(&header, "CHARM_KV_VERSION"),
        format!("\"{}\"", env!("CARGO_PKG_VERSION")),
        "CHARM_KV_VERSION: {fix}"
    );
}

#[test]
fn every_function_and_type_is_documented_and_prefixed() {
    let header = committed_header();
    let lines: Vec<&str> = header.lines().collect();
    let mut functions = 0;
    for (i, line) in lines.iter().enumerate() {
        let declares = line.starts_with("typedef ")
            || line.starts_with("enum ")
            || (line.contains("charm_kv_")
                && line.contains('(')
                && !line.starts_with([' ', '/', '#']));
        if !declares {
            continue;
        }
        if line.contains('(') && !line.starts_with("typedef") {
            functions += 1;
        }
        if let Some(name) = line
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .find(|w| w.starts_with("charm_kv") || w.starts_with("CHARM_KV"))
        {
            assert!(name.starts_with("charm_kv_"), "{name} lacks the prefix");
        }
        // The C23/C17 typedef pair cbindgen writes after each enum belongs to the
        // enum's documentation; everything else must follow its own doc comment.
        if line.starts_with("typedef enum ") || line.starts_with("typedef uint32_t ") {
            continue;
        }
        let before = lines[..i]
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap();
        assert_eq!(before.trim(), "*/", "undocumented in {HEADER}: {line}");
    }
    assert!(functions >= 44, "only {functions} functions found");
}
