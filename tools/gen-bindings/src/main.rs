//! Generates the files derived from the C ABI, all from one cbindgen run:
//!
//! - `include/charm_kv.h`: cbindgen (pinned in this crate's Cargo.lock) over `src/ffi/`
//!   with `cbindgen.toml`;
//! - `bindings/python/charm_kv/_bindings.py`: the ctypes declarations, by
//!   `bindings/python/tools/gen_bindings.py` from that header;
//! - `bindings/go/kv/enums_gen.go`: the Go constants of the header's enums.
//!
//! `--check` writes nothing and fails when a committed file differs from what would be
//! generated (CI runs it through `scripts/gen-bindings --check`).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const HEADER: &str = "include/charm_kv.h";
const GO_ENUMS: &str = "bindings/go/kv/enums_gen.go";
const PYTHON_GENERATOR: &str = "bindings/python/tools/gen_bindings.py";

/// The C enums the Go package mirrors: C enum, Go type, prefix of the Go constants.
const GO_ENUM_NAMES: &[(&str, &str, &str)] = &[
    ("charm_kv_status", "Status", "Status"),
    ("charm_kv_remote_state", "RemoteState", "Remote"),
    ("charm_kv_sync_phase", "SyncPhase", "Sync"),
];

/// Words Go spells in capitals inside identifiers.
const GO_INITIALISMS: &[&str] = &["OK", "IO"];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let check = match args.as_slice() {
        [] => false,
        [flag] if flag == "--check" => true,
        _ => {
            eprintln!("usage: gen-bindings [--check]");
            return ExitCode::from(2);
        }
    };
    match run(check) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("gen-bindings: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Generates (or checks) every file; `Ok(false)` when a check found a stale one.
fn run(check: bool) -> Result<bool, String> {
    let root = repository_root();
    let header = generate_header(&root)?;
    let mut fresh = update(&root, HEADER, &header, check)?;
    fresh &= update(&root, GO_ENUMS, &go_enums(&header)?, check)?;
    // The Python generator reads the committed header: after a check that found it
    // stale, its answer would be about the old one, so it is only asked when fresh.
    if fresh || !check {
        fresh &= python_declarations(&root, check)?;
    }
    Ok(fresh)
}

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

fn generate_header(root: &Path) -> Result<String, String> {
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml"))
        .map_err(|e| format!("reading cbindgen.toml: {e}"))?;
    let bindings = cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .map_err(|e| format!("cbindgen: {e}"))?;
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).map_err(|e| format!("cbindgen wrote non-UTF-8: {e}"))
}

/// Writes `text` to `relative`, or with `check` reports whether it already holds it.
fn update(root: &Path, relative: &str, text: &str, check: bool) -> Result<bool, String> {
    let path = root.join(relative);
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current == text {
        return Ok(true);
    }
    if check {
        let line = current
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .map_or_else(|| "at the end".to_owned(), |i| format!("at line {}", i + 1));
        eprintln!("{relative} is stale (first difference {line}): run scripts/gen-bindings");
        return Ok(false);
    }
    std::fs::write(&path, text).map_err(|e| format!("writing {relative}: {e}"))?;
    eprintln!("wrote {relative}");
    Ok(true)
}

fn python_declarations(root: &Path, check: bool) -> Result<bool, String> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let mut command = Command::new(&python);
    command.current_dir(root).arg(PYTHON_GENERATOR);
    if check {
        command.arg("--check");
    }
    let status = command
        .status()
        .map_err(|e| format!("running {python} {PYTHON_GENERATOR}: {e}"))?;
    Ok(status.success())
}

/// One member of a C enum: its name, value and doc comment (on one line).
struct Member {
    name: String,
    value: u32,
    doc: String,
}

/// The members of `enum <name> { ... };` in the generated header.
fn enum_members(header: &str, name: &str) -> Result<Vec<Member>, String> {
    let start = header
        .find(&format!("\nenum {name}\n"))
        .ok_or_else(|| format!("no enum {name} in the header"))?;
    let body_start = start + header[start..].find("\n {\n").ok_or("no enum body")? + 4;
    let body_end = body_start + header[body_start..].find("\n};").ok_or("no enum end")?;
    let mut members = Vec::new();
    let mut doc = Vec::new();
    for line in header[body_start..body_end].lines().map(str::trim) {
        if let Some(text) = line
            .strip_prefix("/**")
            .or_else(|| line.strip_prefix("* "))
            .or_else(|| line.strip_prefix('*').filter(|rest| !rest.starts_with('/')))
        {
            let text = text.trim();
            if !text.is_empty() {
                doc.push(text.to_owned());
            }
        } else if line == "*/" || line.is_empty() {
            continue;
        } else {
            let (member, value) = line
                .trim_end_matches(',')
                .split_once(" = ")
                .ok_or_else(|| format!("cannot read enum {name} member {line:?}"))?;
            let value = value
                .parse()
                .map_err(|_| format!("enum {name}: {member} has no numeric value"))?;
            members.push(Member {
                name: member.to_owned(),
                value,
                doc: std::mem::take(&mut doc).join(" "),
            });
        }
    }
    Ok(members)
}

/// `CHARM_KV_STATUS_NOT_FOUND` with prefix `CHARM_KV_STATUS_` and Go prefix `Status`
/// -> `StatusNotFound`.
fn go_name(member: &str, c_prefix: &str, go_prefix: &str) -> Result<String, String> {
    let rest = member
        .strip_prefix(c_prefix)
        .ok_or_else(|| format!("{member} lacks the prefix {c_prefix}"))?;
    let mut name = go_prefix.to_owned();
    for word in rest.split('_') {
        if GO_INITIALISMS.contains(&word) {
            name.push_str(word);
        } else {
            let mut chars = word.chars();
            name.extend(chars.next());
            name.push_str(&chars.as_str().to_ascii_lowercase());
        }
    }
    Ok(name)
}

/// `text` as indented `//` lines of at most about 88 columns.
fn go_comment(text: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > 80 {
            out.push_str(&format!("\t// {line}\n"));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&format!("\t// {line}\n"));
    out
}

fn go_enums(header: &str) -> Result<String, String> {
    let mut out = String::from(
        "// Code generated by tools/gen-bindings from include/charm_kv.h. DO NOT EDIT.\n\n\
         package kv\n\n\
         // #include \"charm_kv.h\"\n\
         import \"C\"\n",
    );
    let mut checks = String::new();
    for (c_enum, go_type, go_prefix) in GO_ENUM_NAMES {
        let c_prefix = format!("{}_", c_enum.to_ascii_uppercase());
        out.push_str(&format!(
            "\n// The values of {c_enum} (a {go_type}).\nconst (\n"
        ));
        for member in enum_members(header, c_enum)? {
            let name = go_name(&member.name, &c_prefix, go_prefix)?;
            if !member.doc.is_empty() {
                out.push_str(&go_comment(&format!("{name}: {}", member.doc)));
            }
            out.push_str(&format!("\t{name} {go_type} = {}\n", member.value));
            checks.push_str(&format!("\t_ = x[int({name})-int(C.{})]\n", member.name));
        }
        out.push_str(")\n");
    }
    out.push_str(
        "\n// The values above are checked against the header at compile time: an index\n\
         // out of range here means this file is stale.\nfunc _() {\n\tvar x [1]struct{}\n",
    );
    out.push_str(&checks);
    out.push_str("}\n");
    Ok(out)
}
