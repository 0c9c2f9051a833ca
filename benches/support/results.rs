//! Machine-readable results of the custom-harness benches: with `BENCH_TSV=<file>`,
//! each figure is appended to that file as one tab-separated line
//! `suite operation size engine value unit` (what `scripts/bench_report.py` reads).

use std::io::Write;

/// Appends one result line to `$BENCH_TSV`, if set.
pub fn record(suite: &str, operation: &str, size: u64, engine: &str, value: f64, unit: &str) {
    let Some(path) = std::env::var_os("BENCH_TSV") else {
        return;
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("BENCH_TSV {}: {e}", path.to_string_lossy()));
    writeln!(
        file,
        "{suite}\t{operation}\t{size}\t{engine}\t{value}\t{unit}"
    )
    .expect("writing BENCH_TSV");
}
