#!/usr/bin/env python3
"""Collects and renders the results of ``scripts/bench``.

Every part of the suite leaves tab-separated lines ``suite operation size engine value
unit`` (one figure each); this script turns the outputs that are not in that form yet
into it, then renders them:

    bench_report.py criterion DIR        criterion's estimates under DIR ($CRITERION_HOME)
                                         as TSV lines on stdout (suite ``rust``)
    bench_report.py go FILE              ``go test -bench`` output as TSV lines (``go``)
    bench_report.py render TSV OUT [--sizes TEXT] [--date TEXT] [--readme README.md] [--check]
        writes OUT/results.md (tables with ratios and targets, the machine and date),
        OUT/throughput.png (throughput per operation and size, log scale) and
        OUT/sync.png (push and pull time and peak RSS against size); --readme replaces
        the part of README.md between the ``bench:begin``/``bench:end`` comments with
        the headline table and the charts; --check fails (exit 1) unless every part
        produced its figures and the files are written and non-empty (the smoke run).

Needs matplotlib (scripts/bench installs it into target/pyenv).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Row:
    suite: str
    op: str
    size: int
    engine: str
    value: float
    unit: str


def read_tsv(path: Path) -> list[Row]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 6:
            raise SystemExit(f"{path}:{n}: want 6 tab-separated fields, got {line!r}")
        suite, op, size, engine, value, unit = fields
        rows.append(Row(suite, op, int(size), engine, float(value), unit))
    return rows


def tsv(rows: Iterable[Row]) -> str:
    return "".join(
        f"{r.suite}\t{r.op}\t{r.size}\t{r.engine}\t{r.value:.6g}\t{r.unit}\n" for r in rows
    )


# ---------------------------------------------------------------------------- collect

UNITS = {
    "keys": "keys/s",
    "open": "opens/s",
    "prefix_keys": "prefixes/s",
    "prefix_iter": "prefixes/s",
}


def collect_criterion(root: Path) -> list[Row]:
    """Median time per iteration of each benchmark of benches/ops.rs, as throughput."""
    rows = []
    for bench in sorted(root.glob("**/new/benchmark.json")):
        meta = json.loads(bench.read_text())
        estimates = json.loads((bench.parent / "estimates.json").read_text())
        seconds = estimates["median"]["point_estimate"] / 1e9
        elements = (meta.get("throughput") or {}).get("Elements", 1)
        op = meta["group_id"]
        rows.append(
            Row(
                "rust",
                op,
                int(meta["value_str"]),
                meta["function_id"],
                elements / seconds,
                UNITS.get(op, "ops/s"),
            )
        )
    return rows


GO_LINE = re.compile(r"^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+(.*)$")


def collect_go(text: str) -> list[Row]:
    """The figures of bindings/go/compare/bench_test.go and kv/overhead_bench_test.go."""
    rows = []
    for line in text.splitlines():
        m = GO_LINE.match(line.strip())
        if not m:
            continue
        parts = m.group(1).split("/")
        fields = m.group(3).split()
        metrics = {unit: float(value) for value, unit in zip(fields[::2], fields[1::2])}
        name = parts[0].removeprefix("Benchmark")
        size = 0
        engine = "charm-kv"
        for p in parts[1:]:
            if p.startswith("keys="):
                size = int(p.removeprefix("keys="))
            else:
                engine = p
        ns = metrics.get("ns/op")
        if name == "Get" and ns:
            rows.append(Row("go", "get", size, engine, 1e9 / ns, "ops/s"))
        elif name == "Keys" and "keys/s" in metrics:
            rows.append(Row("go", "keys", size, engine, metrics["keys/s"], "keys/s"))
        elif name == "Set" and ns:
            rows.append(Row("go", "set_local", size, engine, 1e9 / ns, "ops/s"))
        elif name == "Batch" and "keys/s" in metrics:
            rows.append(Row("go", "batch", size, engine, metrics["keys/s"], "keys/s"))
        elif name == "SetSync":
            for p in ("p50", "p99"):
                if f"{p}-ms" in metrics:
                    rows.append(Row("go", f"set_sync_{p}", size, engine, metrics[f"{p}-ms"], "ms"))
        elif name == "GetMissing" and ns:
            rows.append(Row("go", "get_miss", 1000, engine, 1e9 / ns, "ops/s"))
        elif name == "CallOverhead" and ns:
            rows.append(Row("go", "call_overhead", 0, engine, ns, "ns"))
    return rows


# ---------------------------------------------------------------------------- render


def fmt(value: float, unit: str = "") -> str:
    if unit in ("s",):
        text = f"{value:.2f}"
    elif unit in ("ms", "MiB", "MB/s", "ns"):
        text = f"{value:.1f}" if value < 100 else f"{value:,.0f}"
    elif value >= 100:
        text = f"{value:,.0f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


def judge(value: float | None, target: str | None) -> str:
    """``target`` is a comparison and a bound, like ``>=0.75`` or ``<64``; returns the
    target followed by ``ok`` or ``MISS``."""
    if target is None:
        return ""
    if value is None:
        return f"{target} (no data)"
    m = re.match(r"(>=|<=|<|>)(.+)", target)
    assert m, target
    op, bound = m.group(1), float(m.group(2))
    ok = {">=": value >= bound, "<=": value <= bound, "<": value < bound, ">": value > bound}[op]
    return f"{target} {'ok' if ok else '**MISS**'}"


class Results:
    def __init__(self, rows: list[Row]) -> None:
        self.rows = rows
        self.index = {(r.suite, r.op, r.size, r.engine): r for r in rows}
        # Headline: (what, measured, verdict) per target.
        self.targets: list[tuple[str, str, str]] = []

    def get(self, suite: str, op: str, size: int, engine: str) -> Row | None:
        return self.index.get((suite, op, size, engine))

    def sizes(self, suite: str, op: str | None = None) -> list[int]:
        return sorted({r.size for r in self.rows if r.suite == suite and op in (None, r.op)})

    def ops(self, suite: str) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.rows:
            if r.suite == suite:
                seen.setdefault(r.op, None)
        return list(seen)

    def target(
        self,
        what: str,
        measured: list[tuple[str, float | None]],
        bound: str,
        unit: str = "x",
    ) -> None:
        """Records a headline target: every measured (label, value) against ``bound``;
        the verdict is the worst value's."""
        values = [v for _, v in measured if v is not None]
        if not values:
            self.targets.append((what, "not measured", f"{bound} (no data)"))
            return
        worst = min(values) if bound.startswith(">") else max(values)
        sep = "" if unit == "x" else " "
        shown = ", ".join(
            (f"{v:.0f}" if unit != "x" and v.is_integer() else f"{v:.2f}")
            + f"{sep}{unit}"
            + (f" ({label})" if label else "")
            for label, v in measured
            if v is not None
        )
        self.targets.append((what, shown, judge(worst, bound)))


def table(header: list[str], rows: list[list[str]], left: int = 1) -> list[str]:
    """A markdown table; the first ``left`` columns are left-aligned, the rest right."""
    out = ["| " + " | ".join(header) + " |"]
    out.append("| " + " | ".join("---" if i < left else "---:" for i in range(len(header))) + " |")
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out


def ratio(a: Row | None, b: Row | None) -> float | None:
    return a.value / b.value if a and b and b.value else None


def rx(r: float | None) -> str:
    return "" if r is None else f"{r:.2f}x"


def size_label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


OP_NAMES = {
    "get_hit": "point get, hit",
    "get_miss": "point get, miss",
    "keys": "full key listing (sorted)",
    "open": "open",
    "set": "single set (autocommit, fsync)",
    "batch_set": "batch set (10k in one txn)",
    "delete": "delete (autocommit, fsync)",
    "prefix_keys": "keys of a 100-key prefix",
    "prefix_iter": "pairs of a 100-key prefix",
}
RUST_OPS = list(OP_NAMES)
# Measured with the Rust API only: the C driver (benches/c/ops.c) has no range operations.
C_ABI_OPS = [op for op in RUST_OPS if op not in ("prefix_keys", "prefix_iter")]


def section_rust(res: Results) -> list[str]:
    out = [
        "## 1. Rust API vs raw rusqlite",
        "",
        "criterion (`cargo bench --bench ops`), median of the samples; rusqlite on the same "
        "schema and pragmas (WAL, `synchronous=FULL`, 32 MiB page cache) without encryption; "
        "16-byte keys, 100-byte values. Ratio = charm-kv / rusqlite throughput (higher is "
        "better). Point gets are also measured in pairs (`benches/ops.rs`, `paired_gets`: "
        "rounds of the same lookups on both, alternating, in one process; the median of the "
        "rounds' ratios), which the target is judged on: criterion runs one engine after "
        "the other, minutes apart at 1M keys, and the machine drifts in between.",
        "",
    ]
    rows = []
    gets = []
    for size in res.sizes("rust"):
        for op in RUST_OPS:
            c, r = res.get("rust", op, size, "charm-kv"), res.get("rust", op, size, "rusqlite")
            if not (c or r):
                continue
            q = ratio(c, r)
            paired = res.get("rust-paired", op, size, "ratio")
            target = ">=0.75" if op == "get_hit" else None
            if op == "get_hit":
                gets.append((size_label(size), paired.value if paired else None))
            unit = (c or r).unit  # type: ignore[union-attr]
            rows.append(
                [
                    OP_NAMES[op],
                    f"{size:,}",
                    fmt(c.value, unit) if c else "",
                    fmt(r.value, unit) if r else "",
                    rx(q),
                    rx(paired.value) if paired else "",
                    judge(paired.value if paired else None, target),
                ]
            )
    res.target("Rust encrypted point get vs raw rusqlite (paired)", gets, ">=0.75")
    header = ["operation", "keys", "charm-kv", "rusqlite", "ratio", "paired ratio", "target"]
    return [*out, *table(header, rows)]


BOUNDARY_OPS = ["get_hit", "get_miss", "keys", "open", "batch_set"]


def section_c(res: Results) -> list[str]:
    out = [
        "## 2. C ABI vs Rust API",
        "",
        "The boundary's cost, measured in pairs (`benches/ops.rs`, `boundary`): each round "
        'times the same iterations through the `extern "C"` functions of '
        "`include/charm_kv.h` and through the Rust API, alternating, on one database file "
        "in one process; ratio = the median of the rounds' C / Rust throughput ratios (so "
        "the machine's drift hits both sides of each pair alike). The C program "
        "(`benches/c/ops.c`, release static library via pkg-config `charm_kv-static`, "
        "median of 10 samples, a process of its own) drives every operation from C; its "
        "figures are shown for reference. Single sets and deletes wait for `fsync`: shown, "
        "not judged.",
        "",
    ]
    rows = []
    judged = []
    for size in sorted(set(res.sizes("boundary")) | set(res.sizes("c-abi"))):
        for op in RUST_OPS:
            c = res.get("boundary", op, size, "c-abi")
            r = res.get("boundary", op, size, "charm-kv")
            q = res.get("boundary", op, size, "ratio")
            driver = res.get("c-abi", op, size, "c-abi")
            if not (q or driver):
                continue
            target = ">=0.95" if op in BOUNDARY_OPS else None
            if target:
                judged.append((f"{op} {size_label(size)}", q.value if q else None))
            rows.append(
                [
                    OP_NAMES[op],
                    f"{size:,}",
                    fmt(c.value, c.unit) if c else "",
                    fmt(r.value, r.unit) if r else "",
                    rx(q.value) if q else "",
                    judge(q.value if q else None, target),
                    fmt(driver.value, driver.unit) if driver else "",
                ]
            )
    res.target("C ABI vs Rust API (paired; each operation but fsync-bound ones)", judged, ">=0.95")
    header = ["operation", "keys", "C ABI", "Rust API", "ratio", "target", "from the C program"]
    return [*out, *table(header, rows)]


def section_cli(res: Results) -> list[str]:
    out = [
        "## 3. CLI, whole process",
        "",
        "`cargo bench --bench cli`: median time of a whole `charm-kv get` process (spawn, open, "
        "read, exit). Ratio = charm-kv time / the other's (lower is better).",
        "",
    ]
    rows = []
    pairs = [
        ("get_local", "minimal-sqlite", "local mode vs a minimal SQLite select", "<=2"),
        ("get_server", "go-charm", "server configured vs Go `charm kv get`", "<=0.1"),
    ]
    for op, other, label, target in pairs:
        c, o = res.get("cli", op, 1, "charm-kv"), res.get("cli", op, 1, other)
        q = ratio(c, o)
        rows.append(
            [
                label,
                fmt(c.value, "ms") if c else "",
                fmt(o.value, "ms") if o else "",
                rx(q),
                judge(q, target),
            ]
        )
        res.target(f"CLI get, {label}", [("", q)], target)
    out += table(["charm-kv get", "charm-kv", "other", "ratio", "target"], rows)
    # Writes with the server (issue 17): absolute medians, the Go client for scale.
    writes = []
    for op, label, target in [
        ("set_server", "`set` (commit + delta push)", "<=40"),
        ("sync_idle", "`sync` with nothing to do", "<=25"),
    ]:
        c = res.get("cli", op, 1, "charm-kv")
        go = res.get("cli", op, 1, "go-charm")
        value = c.value if c else None
        writes.append(
            [
                label,
                fmt(value, "ms") if c else "",
                fmt(go.value, "ms") if go else "",
                judge(value, target),
            ]
        )
        res.target(f"CLI {label}, ms", [("", value)], target, unit="ms")
    return [
        *out,
        "",
        *table(["with a server", "charm-kv", "Go `charm kv set`", "target (ms)"], writes),
    ]


def section_go(res: Results) -> list[str]:
    out = [
        "## 4. Go binding vs the original Badger-backed charm/kv",
        "",
        "`go test -bench` in bindings/go/kv, same data in both (16-byte keys, 100-byte "
        "values). Get and Keys are local reads; set with sync commits and pushes each write "
        "to the same real `charm serve` on loopback. Ratio = charm-kv / original throughput, "
        "or charm-kv / original latency for set with sync (lower is better).",
        "",
    ]
    rows = []
    gets, keys = [], []
    for op, target, acc in (("get", ">=0.5", gets), ("keys", ">=1.0", keys)):
        for size in res.sizes("go", op):
            c, o = res.get("go", op, size, "charm-kv"), res.get("go", op, size, "badger")
            q = ratio(c, o)
            acc.append((size_label(size), q))
            unit = (c or o).unit  # type: ignore[union-attr]
            rows.append(
                [
                    "Get" if op == "get" else "Keys",
                    f"{size:,}",
                    fmt(c.value, unit) if c else "",
                    fmt(o.value, unit) if o else "",
                    rx(q),
                    judge(q, target),
                ]
            )
    o = res.get("go", "set_local", 0, "badger")
    for engine, label, target in (
        ("charm-kv", "Set, local only (durability full: fsync per commit)", ""),
        ("charm-kv-normal", "Set, local only (durability normal)", ">=0.5"),
        ("sqlite", "Set, SQLite alone (synchronous FULL; no crypto, no journal)", ""),
        ("sqlite-normal", "Set, SQLite alone (synchronous NORMAL)", ""),
    ):
        c = res.get("go", "set_local", 0, engine)
        if c or o:
            q = ratio(c, o)
            rows.append(
                [
                    label,
                    "",
                    fmt(c.value, "ops/s") if c else "",
                    fmt(o.value, "ops/s") if o else "",
                    rx(q),
                    judge(q, target) if target else "",
                ]
            )
    for size in res.sizes("go", "batch"):
        o = res.get("go", "batch", size, "badger")
        for engine, durability in (
            ("charm-kv", "full"),
            ("charm-kv-normal", "normal"),
            ("sqlite", "full, SQLite alone"),
            ("sqlite-normal", "normal, SQLite alone"),
        ):
            c = res.get("go", "batch", size, engine)
            if c or o:
                q = ratio(c, o)
                rows.append(
                    [
                        f"1000-key batch, keys/s (durability {durability})",
                        f"{size:,}",
                        fmt(c.value, "keys/s") if c else "",
                        fmt(o.value, "keys/s") if o else "",
                        rx(q),
                        "" if engine.startswith("sqlite") else judge(q, ">=0.3"),
                    ]
                )
    res.target("Go Get vs original", gets, ">=0.5")
    res.target("Go Keys vs original", keys, ">=1.0")
    out += table(["operation", "keys", "charm-kv", "original", "ratio", "target"], rows)
    out += ["", "Set with sync (latency per write, milliseconds):", ""]
    rows = []
    p50s = []
    for size in res.sizes("go", "set_sync_p50"):
        f = {
            (e, p): res.get("go", f"set_sync_{p}", size, e)
            for e in ("charm-kv", "badger")
            for p in ("p50", "p99")
        }
        q = ratio(f["charm-kv", "p50"], f["badger", "p50"])
        p50s.append((size_label(size), q))
        rows.append(
            [f"{size:,}"]
            + [fmt(f[k].value, "ms") if f[k] else "" for k in sorted(f)]
            + [rx(q), judge(q, "<=0.5")]
        )
    res.target("Go set with sync, p50 latency vs original", p50s, "<=0.5")
    out += table(
        [
            "db keys",
            "original p50",
            "original p99",
            "charm-kv p50",
            "charm-kv p99",
            "p50 ratio",
            "target",
        ],
        rows,
    )
    extra = [
        (res.get("go", "get_miss", 1000, "charm-kv"), "Get of a missing key (1,000 keys)"),
        (res.get("go", "call_overhead", 0, "charm-kv"), "one cgo call (charm_kv_version)"),
    ]
    if any(r for r, _ in extra):
        out += [""] + [f"- {label}: {fmt(r.value, r.unit)}" for r, label in extra if r]
    return out


PY_OPS = {
    "get": "get (`kv[key]`)",
    "get_method": "get (`kv.get(key)`)",
    "get_miss": "get, missing key",
    "set": "set (durable)",
}


def section_python(res: Results) -> list[str]:
    out = [
        "## 5. Python binding vs stdlib sqlite3",
        "",
        "`bindings/python/benchmarks/bench_get_set.py`: the same primary-key lookups and "
        "autocommit inserts on an unencrypted `WITHOUT ROWID` table in WAL mode, best of "
        "interleaved repeats. Ratio = charm_kv / sqlite3 throughput.",
        "",
    ]
    rows = []
    gets = []
    for size in res.sizes("python"):
        for op, label in PY_OPS.items():
            c, s = res.get("python", op, size, "charm_kv"), res.get("python", op, size, "sqlite3")
            if not (c or s):
                continue
            q = ratio(c, s)
            target = ">=1.0" if op in ("get", "get_method") else None
            if target:
                gets.append((f"{op} {size_label(size)}", q))
            rows.append(
                [
                    label,
                    f"{size:,}",
                    fmt(c.value, "ops/s") if c else "",
                    fmt(s.value, "ops/s") if s else "",
                    rx(q),
                    judge(q, target),
                ]
            )
    res.target("Python get vs sqlite3", gets, ">=1.0")
    return [*out, *table(["operation", "keys", "charm_kv", "sqlite3", "ratio", "target"], rows)]


def section_sync(res: Results) -> list[str]:
    out = [
        "## 6. Sync against database size",
        "",
        "`cargo bench --bench sync`: push and pull of a whole database through a real "
        "`charm serve` on loopback, each in a fresh process (its peak RSS is its own). "
        "Targets: at 100 MB at least 50 MB/s end to end; peak RSS under 64 MiB at every size.",
        "",
    ]
    rows = []
    speeds, rss = [], []
    for mb in res.sizes("sync"):
        cells = [f"{mb}"]
        verdicts = []
        for op in ("push", "pull"):
            t, m = res.get("sync", op, mb, "charm-kv"), res.get("sync", f"{op}_rss", mb, "charm-kv")
            speed = mb / t.value if t and t.value else None
            cells += [
                fmt(t.value, "s") if t else "",
                fmt(speed, "MB/s") if speed else "",
                fmt(m.value, "MiB") if m else "",
            ]
            if mb >= 100:
                speeds.append((f"{op} {mb} MB", speed))
                verdicts.append(f"{op} MB/s {judge(speed, '>=50')}")
            if m:
                rss.append((f"{op} {mb} MB", m.value))
                verdicts.append(f"{op} RSS {judge(m.value, '<64')}")
        rows.append([*cells, "; ".join(verdicts)])
    if speeds:
        res.target("Sync of 100 MB, end to end", speeds, ">=50", "MB/s")
    else:
        res.targets.append(("Sync of 100 MB, end to end", "not measured (no 100 MB run)", ""))
    res.target("Sync peak RSS (push and pull)", rss, "<64", "MiB")
    header = ["MB", "push", "push MB/s", "push RSS", "pull", "pull MB/s", "pull RSS", "targets"]
    return [*out, *table(header, rows)]


def section_concurrency(res: Results) -> list[str]:
    out = [
        "## 7. Readers while a writer commits",
        "",
        "`cargo bench --bench concurrency`: one shared `Kv`, 10k keys, N reader threads "
        "doing point gets, alone and while one writer thread commits single sets. Scaling = "
        "reads/s with N readers and the writer / reads/s with 1 reader and the writer. The "
        "machine's core count bounds it.",
        "",
    ]
    base = res.get("concurrency", "reads_with_writer", 1, "charm-kv")
    rows = []
    four = None
    for n in res.sizes("concurrency"):
        alone = res.get("concurrency", "reads_alone", n, "charm-kv")
        contended = res.get("concurrency", "reads_with_writer", n, "charm-kv")
        commits = res.get("concurrency", "writer_commits", n, "charm-kv")
        q = ratio(contended, base)
        if n == 4:
            four = q
        rows.append(
            [
                str(n),
                fmt(alone.value, "reads/s") if alone else "",
                fmt(contended.value, "reads/s") if contended else "",
                fmt(commits.value, "commits/s") if commits else "",
                rx(q),
                judge(q, ">=1.5") if n == 4 else "",
            ]
        )
    res.target("4 readers with a writer vs 1 reader with a writer", [("", four)], ">=1.5")
    header = ["readers", "alone", "with a writer", "writer commits", "scaling", "target"]
    return [*out, *table(header, rows)]


def section_pushes(res: Results) -> list[str]:
    out = [
        "## 8. One-key pushes on a large database",
        "",
        "`cargo bench --bench pushes`: a database of the given keys (16-byte keys, 64-byte "
        "values) pushed once as a full snapshot, then consecutive one-key pushes (set of an "
        "existing key, then sync) to a real `charm serve` on loopback; upload bytes per push "
        "from the Upload progress totals. Then a new device of the account syncs from "
        "scratch: bytes and files from the Download progress (a transfer per file), HTTP "
        "requests counted by a loopback proxy. Targets (issue 16): upload <= 64 KiB per push "
        "amortised, p99 <= 3x p50, the new device downloads <= 1.5x the database in <= 50 "
        "requests.",
        "",
    ]
    rows = []
    ups, spreads, downs, reqs = [], [], [], []
    for keys in res.sizes("pushes"):

        def g(op: str, keys: int = keys) -> Row | None:
            return res.get("pushes", op, keys, "charm-kv")

        up, p50, p99 = g("upload_per_push"), g("set_sync_p50"), g("set_sync_p99")
        spread = ratio(p99, p50)
        down, files, requests = g("new_download_x_db"), g("new_files"), g("new_requests")
        count, db, snap, fulls = g("pushes"), g("db_file"), g("full_snapshot"), g("full_snapshots")
        label = size_label(keys)
        ups.append((label, up.value if up else None))
        spreads.append((label, spread))
        downs.append((label, down.value if down else None))
        reqs.append((label, requests.value if requests else None))
        rows.append(
            [
                f"{keys:,}",
                f"{count.value:.0f}" if count else "",
                fmt(db.value, "MiB") if db else "",
                fmt(snap.value, "MiB") if snap else "",
                f"{fulls.value:.0f}" if fulls else "",
                f"{fmt(up.value, 'KiB')} {judge(up.value, '<=64')}" if up else "",
                fmt(p50.value, "ms") if p50 else "",
                fmt(p99.value, "ms") if p99 else "",
                f"{rx(spread)} {judge(spread, '<=3')}" if spread else "",
                f"{rx(down.value)} {judge(down.value, '<=1.5')}" if down else "",
                f"{files.value:.0f}" if files else "",
                f"{requests.value:.0f} {judge(requests.value, '<=50')}" if requests else "",
            ]
        )
    res.target("One-key push, upload per push amortised", ups, "<=64", "KiB")
    res.target("One-key push, set with sync p99 / p50", spreads, "<=3")
    res.target("New device's first sync, download / database file", downs, "<=1.5")
    res.target("New device's first sync, HTTP requests", reqs, "<=50", "requests")
    header = [
        "keys",
        "pushes",
        "db file",
        "full snapshot",
        "full snapshots in the pushes",
        "upload per push",
        "p50",
        "p99",
        "p99/p50",
        "new device download / db",
        "files",
        "requests",
    ]
    return [*out, *table(header, rows)]


def section_devices(res: Results) -> list[str]:
    out = [
        "## 9. Many devices of one account",
        "",
        "`cargo bench --bench pushes`: N devices (own data dirs, one SSH identity) each doing "
        "rounds of set + sync at once against a real `charm serve` on loopback; latency of "
        "each round, errors the callers saw, rounds of 5 s or more; then every device syncs "
        "twice in turn and all must hold the same contents. Targets: no error, no stall, "
        "p99 <= 2 s at 8 devices.",
        "",
    ]
    rows = []
    p99s, errs = [], []
    for n in res.sizes("devices"):

        def g(op: str, n: int = n) -> Row | None:
            return res.get("devices", op, n, "charm-kv")

        rounds, p50, p99, mx = g("rounds"), g("p50"), g("p99"), g("max")
        errors, stalls, converged = g("errors"), g("stalls"), g("converged")
        if n == 8 and p99:
            p99s.append(("8 devices", p99.value / 1000))
        if errors:
            errs.append((f"{n} devices", errors.value))
        rows.append(
            [
                str(n),
                f"{rounds.value:.0f}" if rounds else "",
                fmt(p50.value, "ms") if p50 else "",
                fmt(p99.value, "ms") if p99 else "",
                fmt(mx.value, "ms") if mx else "",
                f"{errors.value:.0f} {judge(errors.value, '<=0')}" if errors else "",
                f"{stalls.value:.0f} {judge(stalls.value, '<=0')}" if stalls else "",
                ("yes" if converged.value else "**no**") if converged else "",
            ]
        )
    res.target("Devices doing set with sync at once, p99", p99s, "<=2", "s")
    res.target("Devices doing set with sync at once, errors seen", errs, "<=0", "errors")
    header = ["devices", "rounds", "p50", "p99", "max", "errors", "stalls >= 5 s", "converged"]
    return [*out, *table(header, rows)]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}"


def render_markdown(res: Results, sizes: str, when: str) -> tuple[str, list[str]]:
    sections = [
        section_rust(res),
        section_c(res),
        section_cli(res),
        section_go(res),
        section_python(res),
        section_sync(res),
        section_concurrency(res),
        section_pushes(res),
        section_devices(res),
    ]
    headline = table(
        ["target", "measured", "verdict"],
        [[what, measured, verdict] for what, measured, verdict in res.targets],
        left=2,
    )
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `scripts/bench` on {when} on {machine()}.",
        f"Sizes: {sizes}.",
        "",
        "The machine is shared and noisy: read the ratios, each measured within one run, "
        "rather than the absolute figures. Every figure is also in "
        "[results.tsv](results.tsv) (`suite operation size engine value unit`). "
        "What bounds each figure, and what was done where a target is missed: "
        "[performance.md](../performance.md).",
        "",
        "![throughput](throughput.png)",
        "",
        "![sync](sync.png)",
        "",
        "## Targets",
        "",
        *headline,
    ]
    for s in sections:
        lines += ["", *s]
    return "\n".join(lines) + "\n", headline


def plot(res: Results, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        (
            "Rust API vs rusqlite vs C ABI",
            [
                ("rust", "charm-kv", "charm-kv (Rust)"),
                ("rust", "rusqlite", "rusqlite (no encryption)"),
                ("c-abi", "c-abi", "charm-kv (C ABI)"),
            ],
            RUST_OPS,
        ),
        (
            "Go binding vs original (Badger)",
            [("go", "charm-kv", "charm-kv (Go)"), ("go", "badger", "original charm/kv")],
            ["get", "keys", "set_sync"],
        ),
        (
            "Python binding vs sqlite3",
            [("python", "charm_kv", "charm_kv (Python)"), ("python", "sqlite3", "stdlib sqlite3")],
            ["get", "get_miss", "set"],
        ),
    ]
    # Set with sync as a throughput too: writes per second at the median latency.
    res = Results(
        res.rows
        + [
            Row("go", "set_sync", r.size, r.engine, 1000 / r.value, "writes/s")
            for r in res.rows
            if r.suite == "go" and r.op == "set_sync_p50" and r.value > 0
        ]
    )
    fig, axes = plt.subplots(len(panels), 1, figsize=(13, 4.2 * len(panels)))
    for ax, (title, series, ops) in zip(axes, panels):
        suite0 = series[0][0]
        groups = [(op, size) for op in ops for size in res.sizes(suite0, op)]
        width = 0.8 / len(series)
        for i, (suite, engine, label) in enumerate(series):
            xs, ys = [], []
            for g, (op, size) in enumerate(groups):
                r = res.get(suite, op, size, engine)
                if r:
                    xs.append(g + (i - (len(series) - 1) / 2) * width)
                    ys.append(r.value)
            ax.bar(xs, ys, width=width, label=label)
        ax.set_yscale("log")
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([f"{op}\n{size_label(size)}" for op, size in groups], fontsize=8)
        ax.set_ylabel("per second (log)")
        ax.set_title(title)
        ax.legend(fontsize=8)
        ax.grid(axis="y", which="both", alpha=0.3)
    fig.text(
        0.01,
        0.002,
        "Per second: operations; keys listed for keys; opens for open; "
        "set_sync: writes pushed to the server, at the median latency",
        fontsize=8,
    )
    fig.tight_layout(rect=(0, 0.015, 1, 1))
    fig.savefig(out / "throughput.png", dpi=90)
    plt.close(fig)

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    mbs = res.sizes("sync")
    for op, marker in (("push", "o"), ("pull", "s")):
        pts = [(mb, res.get("sync", op, mb, "charm-kv")) for mb in mbs]
        left.plot(
            [mb for mb, r in pts if r], [r.value for _, r in pts if r], marker=marker, label=op
        )
        pts = [(mb, res.get("sync", f"{op}_rss", mb, "charm-kv")) for mb in mbs]
        right.plot(
            [mb for mb, r in pts if r],
            [r.value for _, r in pts if r],
            marker=marker,
            label=f"{op} peak RSS",
        )
    if mbs:
        left.plot(
            mbs,
            [mb / 50 for mb in mbs],
            linestyle="--",
            color="grey",
            label="50 MB/s (target at 100 MB)",
        )
        right.axhline(64, linestyle="--", color="grey", label="64 MiB target")
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xlabel("database size (MB)")
        ax.grid(which="both", alpha=0.3)
        ax.legend(fontsize=8)
    left.set_yscale("log")
    left.set_ylabel("seconds")
    left.set_title("Sync time against size")
    right.set_ylabel("MiB")
    right.set_ylim(bottom=0)
    right.set_title("Peak RSS of the syncing process")
    fig.tight_layout()
    fig.savefig(out / "sync.png", dpi=90)
    plt.close(fig)


REQUIRED = {
    "rust": [(op, e) for op in RUST_OPS for e in ("charm-kv", "rusqlite")],
    "c-abi": [(op, "c-abi") for op in C_ABI_OPS],
    "boundary": [(op, e) for op in BOUNDARY_OPS for e in ("c-abi", "charm-kv", "ratio")],
    "rust-paired": [
        (op, e) for op in ("get_hit", "get_miss") for e in ("charm-kv", "rusqlite", "ratio")
    ],
    "cli": [
        ("get_local", "charm-kv"),
        ("get_local", "minimal-sqlite"),
        ("get_server", "charm-kv"),
        ("get_server", "go-charm"),
        ("set_server", "charm-kv"),
        ("set_server", "go-charm"),
        ("sync_idle", "charm-kv"),
    ],
    "go": [
        (op, e)
        for op in ("get", "keys", "set_sync_p50", "set_sync_p99")
        for e in ("charm-kv", "badger")
    ],
    "python": [(op, e) for op in PY_OPS for e in ("charm_kv", "sqlite3")],
    "sync": [(op, "charm-kv") for op in ("push", "push_rss", "pull", "pull_rss")],
    "concurrency": [
        (op, "charm-kv") for op in ("reads_alone", "reads_with_writer", "writer_commits")
    ],
    "pushes": [
        (op, "charm-kv")
        for op in (
            "db_file",
            "full_snapshot",
            "upload_per_push",
            "set_sync_p50",
            "set_sync_p99",
            "new_download",
            "new_files",
            "new_requests",
        )
    ],
    "devices": [(op, "charm-kv") for op in ("rounds", "p50", "p99", "max")],
}


def check(res: Results, out: Path) -> list[str]:
    problems = []
    have = {(r.suite, r.op, r.engine) for r in res.rows if r.value > 0 and math.isfinite(r.value)}
    for suite, wanted in REQUIRED.items():
        missing = [f"{op}/{e}" for op, e in wanted if (suite, op, e) not in have]
        if missing:
            problems.append(f"{suite}: no figure for {', '.join(missing)}")
    readers = set(res.sizes("concurrency"))
    if not {1, 2, 4} <= readers:
        problems.append(f"concurrency: readers measured {sorted(readers)}, want 1, 2, 4")
    if len(res.sizes("devices")) < 2:
        problems.append(f"devices: counts measured {res.sizes('devices')}, want at least two")
    for name in ("results.md", "results.tsv", "throughput.png", "sync.png"):
        f = out / name
        if not f.is_file() or f.stat().st_size == 0:
            problems.append(f"{f}: missing or empty")
    return problems


def update_readme(readme: Path, headline: list[str], when: str, sizes: str) -> None:
    text = readme.read_text(encoding="utf-8")
    begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
    if begin not in text or end not in text:
        raise SystemExit(f"{readme}: no {begin} ... {end} section to update")
    body = "\n".join(
        [
            begin,
            f"Last run: {when}, {machine()}; sizes: {sizes}. All tables: "
            "[docs/bench/results.md](docs/bench/results.md).",
            "",
            *headline,
            "",
            "![throughput per operation and size](docs/bench/throughput.png)",
            "",
            "![sync time and peak RSS against size](docs/bench/sync.png)",
            end,
        ]
    )
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(head + body + tail, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("criterion")
    p.add_argument("dir", type=Path)
    p = sub.add_parser("go")
    p.add_argument("file", type=Path)
    p = sub.add_parser("render")
    p.add_argument("tsv", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--sizes", default="as given to scripts/bench")
    p.add_argument("--date", help="when the figures were measured (default: now)")
    p.add_argument("--readme", type=Path)
    p.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)

    if args.command == "criterion":
        sys.stdout.write(tsv(collect_criterion(args.dir)))
        return 0
    if args.command == "go":
        sys.stdout.write(tsv(collect_go(args.file.read_text(encoding="utf-8"))))
        return 0

    rows = read_tsv(args.tsv)
    res = Results(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    when = args.date or time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    markdown, headline = render_markdown(res, args.sizes, when)
    (args.out / "results.md").write_text(markdown, encoding="utf-8")
    (args.out / "results.tsv").write_text(tsv(rows), encoding="utf-8")
    plot(res, args.out)
    if args.readme:
        update_readme(args.readme, headline, when, args.sizes)
    print(f"bench-report: wrote {args.out}/results.md, throughput.png, sync.png", file=sys.stderr)
    if args.check:
        problems = check(res, args.out)
        for problem in problems:
            print(f"bench-report: {problem}", file=sys.stderr)
        if problems:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
