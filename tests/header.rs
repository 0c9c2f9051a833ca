//! The committed C header `include/charm_kv.h` carries the crate's version and
//! documents and prefixes every item. That it is exactly what the pinned cbindgen
//! generates from `src/ffi/` is checked by `scripts/gen-bindings --check` (a CI step in
//! `.ci/run` and `scripts/test-all`; docs/c-abi.md), so no test here needs cbindgen.

use std::path::Path;

const HEADER: &str = "include/charm_kv.h";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn committed_header() -> String {
    std::fs::read_to_string(root().join(HEADER)).expect("include/charm_kv.h is missing")
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
    let fix =
        "update the version defines in cbindgen.toml (after_includes) and run scripts/gen-bindings";
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

/// The naming rule of docs/c-abi.md: a function of an object starts with the object's
/// name (`charm_kv_store_get` takes a `charm_kv_store`), except constructors of another
/// object made from it; functions without a handle are in a namespace (named database
/// files `charm_kv_database_*`, the account `charm_kv_account_*`, linking a device
/// `charm_kv_link_*`); `charm_kv_version` is the library's.
#[test]
fn functions_start_with_the_name_of_their_object() {
    let header = committed_header();
    let objects: Vec<&str> = header
        .lines()
        .filter_map(|line| {
            line.strip_prefix("typedef struct ")
                .or_else(|| line.strip_prefix("enum "))
        })
        .filter_map(|rest| rest.split([' ', ';']).next())
        .filter_map(|name| name.strip_prefix("charm_kv_"))
        .collect();
    assert!(objects.contains(&"store") && objects.contains(&"slice"));
    // Constructors: made from a handle of another object, named after what they make.
    let constructors = ["charm_kv_iter_new", "charm_kv_batch_begin"];
    // Namespaces without a handle: database files by name, the account and linking a
    // device. Their functions take the options that locate the data path and server.
    let namespaces = ["database", "account", "link"];
    let mut checked = 0;
    for line in header.lines() {
        if line.starts_with([' ', '/', '#', '*', '}', 't', '{']) || !line.contains("charm_kv_") {
            continue;
        }
        let Some((head, params)) = line.split_once('(') else {
            continue;
        };
        let Some(name) = head.split([' ', '*']).rfind(|w| w.starts_with("charm_kv_")) else {
            continue;
        };
        checked += 1;
        if name == "charm_kv_version" {
            continue;
        }
        let owner = objects
            .iter()
            .chain(&namespaces)
            .filter(|object| name.starts_with(&format!("charm_kv_{object}_")))
            .max_by_key(|object| object.len())
            .unwrap_or_else(|| panic!("{name} does not start with charm_kv_<object>_"));
        // The object of the first parameter, when it is a handle (one `*`).
        let first = params.split([',', ')']).next().unwrap();
        let handle = first
            .split_whitespace()
            .find_map(|w| w.strip_prefix("charm_kv_"))
            .filter(|_| first.matches('*').count() == 1);
        if let Some(handle) = handle {
            assert!(
                handle == *owner || constructors.contains(&name) || namespaces.contains(owner),
                "{name} takes a charm_kv_{handle} first, so it should be charm_kv_{handle}_..."
            );
        }
    }
    assert!(checked >= 44, "only {checked} functions found");
}
