//! The layering of the core (`docs/architecture.md`), checked: each module may import
//! only the modules of the layers below it. A test, not a build step; it reads the
//! sources.

/// Modules from the bottom up, each with the crate modules it may import.
const LAYERS: &[(&str, &[&str])] = &[
    ("error", &[]),
    ("timeouts", &["error"]),
    ("config", &["error", "timeouts"]),
    ("crypto", &["error"]),
    ("store", &["error", "config", "crypto"]),
    ("cloud", &["error", "timeouts", "config", "crypto"]),
    (
        "account",
        &["error", "timeouts", "config", "crypto", "cloud"],
    ),
    (
        "sync",
        &["error", "timeouts", "config", "crypto", "store", "cloud"],
    ),
    (
        "options",
        &["error", "timeouts", "config", "crypto", "store"],
    ),
    // The facade: a `Kv` makes `Batch`es, and a batch commits through its `Kv`.
    (
        "kv",
        &[
            "error", "timeouts", "config", "crypto", "store", "cloud", "account", "sync",
            "options", "batch",
        ],
    ),
    (
        "batch",
        &[
            "error", "timeouts", "config", "crypto", "store", "cloud", "account", "sync",
            "options", "kv",
        ],
    ),
    // Linking devices: the account's link and key import, plus the local databases.
    (
        "devices",
        &[
            "error", "timeouts", "config", "crypto", "store", "cloud", "account", "sync",
            "options", "kv",
        ],
    ),
    // Export and import as JSON lines, through the facade.
    ("jsonl", &["error", "store", "kv", "batch"]),
];

/// The crate modules a source file names in code (comments left out): `crate::x` and
/// the first segments of `crate::{x, y::z}`.
fn imported_modules(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    found.push(name);
                }
            } else {
                found.push(
                    rest.chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect(),
                );
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn sources(path: &Path, out: &mut Vec<PathBuf>) {
        if path.is_dir() {
            for entry in std::fs::read_dir(path).unwrap() {
                sources(&entry.unwrap().path(), out);
            }
        } else if path.is_file() && path.extension().is_some_and(|e| e == "rs") {
            out.push(path.to_owned());
        }
    }

    #[test]
    fn every_module_imports_only_the_layers_below_it() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let layered: Vec<&str> = LAYERS.iter().map(|(module, _)| *module).collect();
        let mut wrong = Vec::new();
        for (module, allowed) in LAYERS {
            let mut files = Vec::new();
            sources(&src.join(module), &mut files);
            sources(&src.join(format!("{module}.rs")), &mut files);
            assert!(!files.is_empty(), "module {module} has no sources");
            for file in files {
                let text = std::fs::read_to_string(&file).unwrap();
                for name in imported_modules(&text) {
                    // Re-exports at the crate root (`crate::Kv`, `crate::Result`) and
                    // the module itself are fine; other layered modules must be below.
                    if name != *module
                        && layered.contains(&name.as_str())
                        && !allowed.contains(&name.as_str())
                    {
                        wrong.push(format!("{} uses crate::{name}", file.display()));
                    }
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "imports against the layers:\n{}",
            wrong.join("\n")
        );
    }

    #[test]
    fn the_import_scanner_sees_paths_and_groups_but_not_comments() {
        let text = "use crate::store::Store;\n\
                    use crate::{sync::engine, cloud};\n\
                    // crate::kv in a comment\n\
                    let x = crate::account::connect(c);";
        assert_eq!(
            imported_modules(text),
            ["store", "sync", "cloud", "account"]
        );
    }
}
