//! How values, listings, warnings and progress are printed.

use std::io::{self, IsTerminal, Write};

use charm_kv::{Iter, Kv, RemoteStatus, StoreStatus, SyncPhase, SyncProgress};

use crate::{stdout_is_terminal, CliError};

const OMITTED: &[u8] = b"(omitted binary data)";

/// On a terminal, non-UTF-8 values are replaced unless `-b`; piped output is raw.
fn printable(value: &[u8], show_binary: bool, terminal: bool) -> &[u8] {
    if terminal && !show_binary && std::str::from_utf8(value).is_err() {
        OMITTED
    } else {
        value
    }
}

/// `get`: the value as is; on a terminal followed by a newline.
pub fn print_value(value: &[u8], show_binary: bool) -> Result<(), CliError> {
    let terminal = stdout_is_terminal();
    let mut out = io::stdout().lock();
    out.write_all(printable(value, show_binary, terminal))?;
    if terminal {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// One line of JSON on stdout.
pub fn print_json_line(line: &str) -> Result<(), CliError> {
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

pub struct ListLayout {
    pub keys_only: bool,
    pub values_only: bool,
    pub show_binary: bool,
    pub delimiter: String,
    pub json: bool,
}

/// `list --json`: one object per pair and line; `-k` / `-v` keep only the key / value
/// field and its `*_base64` flag.
fn json_list_line(key: &[u8], value: &[u8], layout: &ListLayout) -> String {
    use charm_kv::jsonl::text_or_base64;
    if layout.keys_only {
        let (key, key_base64) = text_or_base64(key);
        serde_json::json!({ "key": key, "key_base64": key_base64 }).to_string()
    } else if layout.values_only {
        let (value, value_base64) = text_or_base64(value);
        serde_json::json!({ "value": value, "value_base64": value_base64 }).to_string()
    } else {
        charm_kv::jsonl::encode_pair(key, value)
    }
}

/// `list`: `key<delim>value` lines, or one item per line with `-k` / `-v`.
pub fn print_list(iter: Iter, layout: &ListLayout) -> Result<(), CliError> {
    let terminal = stdout_is_terminal();
    let mut out = io::BufWriter::new(io::stdout().lock());
    for item in iter {
        let (key, value) = item?;
        if layout.json {
            writeln!(out, "{}", json_list_line(&key, &value, layout))?;
            continue;
        }
        let key = printable(&key, layout.show_binary, terminal);
        let value = printable(&value, layout.show_binary, terminal);
        if layout.keys_only {
            out.write_all(key)?;
        } else if layout.values_only {
            out.write_all(value)?;
        } else {
            out.write_all(key)?;
            out.write_all(layout.delimiter.as_bytes())?;
            out.write_all(value)?;
        }
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// Warns, as ssh does, when the SSH identity may be read by other users: whoever
/// reads it can unwrap every encrypt key of the account.
pub fn warn_identity_permissions(options: &charm_kv::Options) {
    if let Some((path, mode)) = charm_kv::identity_readable_by_others(options) {
        stderr_line!(
            "charm-kv: warning: SSH key {} is readable by others (mode {mode:03o}); \
             anyone who can read it can decrypt this account's data. Run `chmod 600` on it",
            path.display()
        );
    }
}

/// A one-line warning when the push after a write failed: the write is committed
/// locally but not on the server. (A push that succeeded but was followed by another
/// device's ticket leaves the write pending too, until a sync confirms it; that needs
/// nothing from the user, so it is not announced.)
pub fn warn_pending(kv: &Kv) {
    if kv.options().config().server().is_none() {
        return;
    }
    let Some(why) = kv.last_push_error() else {
        return;
    };
    let pending = kv.pending_writes().unwrap_or(0).max(1);
    stderr_line!(
        "charm-kv: warning: {pending} write(s) saved locally but not yet on the server \
         ({why}); run `charm-kv sync` when it is reachable"
    );
}

/// Once per run: the JWT and the files went to a server on another machine over plain
/// http (the server's choice; `CHARM_KV_REQUIRE_TLS=true` refuses it).
pub fn warn_plain_http() {
    if let Some(server) = charm_kv::plain_http_host() {
        stderr_line!(
            "charm-kv: warning: the Charm server {server} serves its HTTP API over plain \
             http: the access token and the (encrypted) files crossed the network \
             unprotected; set CHARM_KV_REQUIRE_TLS=true to refuse this"
        );
    }
}

/// `sync`, with a progress line on stderr when it is a terminal.
pub fn sync_with_progress(kv: &Kv) -> Result<(), CliError> {
    let terminal = io::stderr().is_terminal();
    let mut shown = false;
    let result = kv.sync_with_progress(&mut |p: &SyncProgress| {
        if terminal {
            let verb = match p.phase {
                SyncPhase::Download => "downloading",
                SyncPhase::Upload => "uploading",
            };
            let line = if p.total > 0 {
                format!(
                    "{verb} {} / {} ({}%)",
                    human(p.done),
                    human(p.total),
                    p.done * 100 / p.total
                )
            } else {
                format!("{verb} {}", human(p.done))
            };
            stderr_text!("\r\x1b[2K{line}");
            shown = true;
        }
    });
    if shown {
        stderr_line!();
    }
    result?;
    Ok(())
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `status --json`: the fields of [`print_status`] in one object; numbers are
/// numbers and never/none/unknown are null (documented in docs/cli.md).
pub fn print_status_json(db: &str, status: &StoreStatus) -> Result<(), CliError> {
    let (server, remote_version, server_error) = match &status.remote {
        RemoteStatus::NotConfigured => ("not configured", None, None),
        RemoteStatus::NotChecked => ("not checked", None, None),
        RemoteStatus::Reachable { newest_version } => ("reachable", Some(*newest_version), None),
        RemoteStatus::Unreachable(e) => ("unreachable", None, Some(e.to_string())),
    };
    let integrity = match status.integrity_ok() {
        true => "ok".to_owned(),
        false => status.integrity_problems.join("; "),
    };
    let object = serde_json::json!({
        "database": db,
        "last_sync": status.last_sync.map(|s| crate::time::format_utc(s.at)),
        "last_sync_version": status.last_sync.map(|s| s.version),
        "local_version": status.local_version,
        "pending_writes": status.pending_writes,
        "chain_start": status.chain.map(|c| c.start),
        "chain_deltas": status.chain.map(|c| c.deltas),
        "size_bytes": status.size_bytes,
        "integrity": integrity,
        "server": server,
        "remote_version": remote_version,
        "server_error": server_error,
    });
    print_json_line(&object.to_string())
}

/// `status`: one `field: value` per line, every field always present (names are
/// documented in README.md and stay stable).
pub fn print_status(db: &str, status: &StoreStatus) -> Result<(), CliError> {
    let never = || "never".to_owned();
    let none = || "none".to_owned();
    let (server, remote_version, server_error) = match &status.remote {
        RemoteStatus::NotConfigured => ("not configured", "unknown".to_owned(), none()),
        RemoteStatus::NotChecked => ("not checked", "unknown".to_owned(), none()),
        RemoteStatus::Reachable { newest_version } => {
            ("reachable", newest_version.to_string(), none())
        }
        RemoteStatus::Unreachable(e) => ("unreachable", "unknown".to_owned(), e.to_string()),
    };
    let integrity = match status.integrity_ok() {
        true => "ok".to_owned(),
        false => status.integrity_problems.join("; "),
    };
    let fields = [
        ("database", db.to_owned()),
        (
            "last_sync",
            status
                .last_sync
                .map_or_else(never, |s| crate::time::format_utc(s.at)),
        ),
        (
            "last_sync_version",
            status
                .last_sync
                .map_or_else(never, |s| s.version.to_string()),
        ),
        ("local_version", status.local_version.to_string()),
        ("pending_writes", status.pending_writes.to_string()),
        (
            "chain_start",
            status.chain.map_or_else(none, |c| c.start.to_string()),
        ),
        (
            "chain_deltas",
            status.chain.map_or_else(none, |c| c.deltas.to_string()),
        ),
        ("size_bytes", status.size_bytes.to_string()),
        ("integrity", integrity),
        ("server", server.to_owned()),
        ("remote_version", remote_version),
        ("server_error", server_error),
    ];
    let mut out = io::stdout().lock();
    for (name, value) in fields {
        // A message on one line, whatever it carries.
        writeln!(out, "{name}: {}", value.replace(['\n', '\r'], " "))?;
    }
    out.flush()?;
    Ok(())
}
