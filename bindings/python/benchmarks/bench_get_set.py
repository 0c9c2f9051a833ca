#!/usr/bin/env python3
"""Micro benchmark: charm_kv get/set against the standard library's sqlite3.

Both sides do the same primary-key work on the same machine in one run: a table
``kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID`` in WAL mode with
``synchronous=FULL`` and a 32 MiB page cache (what charm-kv uses underneath, minus the
encryption), 16-byte keys and 100-byte values, lookups in random order. sqlite3 runs in
autocommit mode, so each of its writes is durable like each charm-kv write.

Reported: microseconds per operation (best of the repeats, measurements interleaved)
and the ratio sqlite3 time / charm_kv time: 1.0 or more means charm_kv is at least as
fast. This machine class is shared and noisy: compare ratios, not absolute numbers.
Each size times at most ``--lookups`` reads (random present keys) per repeat.

    python bindings/python/benchmarks/bench_get_set.py [--sizes 20000,100000] [--repeats 5]

``--tsv FILE`` appends the figures as ``python <operation> <size> <engine> <ops/s>
ops/s`` lines (tab-separated), which ``scripts/bench`` collects.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Callable

import charm_kv

KEY_LEN, VALUE_LEN = 16, 100
ENCRYPT_KEY = "YmVuY2htYXJrLWtleS1mb3ItY2hhcm0ta3YtcHl0aG9uLWdldC1zZXQtMDAwMDAwMDAwMDA="


def best_time(run: Callable[[], None], count: int, repeats: int) -> float:
    """Best seconds per operation over ``repeats`` runs of ``run`` (``count`` ops each)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, (time.perf_counter() - start) / count)
    return best


# Operation names in the --tsv output.
TSV_NAMES = {
    "get (kv[key])": "get",
    "get (kv.get(key))": "get_method",
    "get, missing key": "get_miss",
    "set (durable)": "set",
}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000, help="keys in the table (default 20000)")
    ap.add_argument("--sizes", help="comma-separated table sizes, instead of --n")
    ap.add_argument("--lookups", type=int, default=20000, help="reads timed per repeat")
    ap.add_argument("--writes", type=int, default=300, help="single durable writes timed")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--tsv", help="append the results to this file as TSV lines")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [args.n]
    all_results = {}
    for n in sizes:
        results = run(n, args)
        all_results[n] = results
        if args.tsv:
            with open(args.tsv, "a", encoding="utf-8") as out:
                for name, r in results.items():
                    for engine in ("charm_kv", "sqlite3"):
                        rate = 1e6 / r[f"{engine}_us"]
                        out.write(f"python\t{TSV_NAMES[name]}\t{n}\t{engine}\t{rate}\tops/s\n")
        if args.json:
            continue
        print(f"{n} keys, {KEY_LEN}-byte keys, {VALUE_LEN}-byte values, best of {args.repeats}")
        print(f"{'operation':<20} {'charm_kv':>12} {'sqlite3':>12} {'ratio':>7}")
        for name, r in results.items():
            print(
                f"{name:<20} {r['charm_kv_us']:>9.2f} us {r['sqlite3_us']:>9.2f} us"
                f" {r['ratio']:>6.2f}x"
            )
    if args.json:
        print(json.dumps(all_results if args.sizes else all_results[args.n], indent=2))
    else:
        print("ratio = sqlite3 time / charm_kv time (>= 1.0: charm_kv at least as fast)")
    return all_results


def run(n: int, args: argparse.Namespace) -> dict:
    """Times both sides on a table of ``n`` keys; microseconds per operation."""
    rng = random.Random(42)
    keys = [rng.randbytes(KEY_LEN) for _ in range(n)]
    value = rng.randbytes(VALUE_LEN)
    lookups = rng.sample(keys, min(n, args.lookups))
    missing = [rng.randbytes(KEY_LEN + 1) for _ in range(len(lookups))]
    write_keys = [rng.randbytes(KEY_LEN) for _ in range(args.writes)]

    with tempfile.TemporaryDirectory(prefix="charm-kv-bench-") as tmp:
        kv = charm_kv.open("bench", env=False, data_dir=tmp, encrypt_keys=[ENCRYPT_KEY])
        kv.update((k, value) for k in keys)

        db = sqlite3.connect(Path(tmp) / "plain.sqlite", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA cache_size=-32768")  # what each charm-kv connection has
        db.execute("CREATE TABLE kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID")
        db.execute("BEGIN")
        db.executemany("INSERT INTO kv VALUES (?, ?)", ((k, value) for k in keys))
        db.execute("COMMIT")

        execute = db.execute
        select = "SELECT value FROM kv WHERE key = ?"
        upsert = "INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)"

        def sqlite_get() -> None:
            for k in lookups:
                execute(select, (k,)).fetchone()[0]

        def sqlite_miss() -> None:
            for k in missing:
                execute(select, (k,)).fetchone()

        def sqlite_set() -> None:
            for k in write_keys:
                execute(upsert, (k, value))

        def charm_get() -> None:
            for k in lookups:
                kv[k]

        def charm_get_method() -> None:
            get = kv.get
            for k in lookups:
                get(k)

        def charm_miss() -> None:
            get = kv.get
            for k in missing:
                get(k)

        def charm_set() -> None:
            for k in write_keys:
                kv[k] = value

        pairs = {
            "get (kv[key])": (charm_get, sqlite_get, len(lookups)),
            "get (kv.get(key))": (charm_get_method, sqlite_get, len(lookups)),
            "get, missing key": (charm_miss, sqlite_miss, len(missing)),
            "set (durable)": (charm_set, sqlite_set, args.writes),
        }
        # Warm both up, then interleave the measurements so drift hits both alike.
        charm_get()
        sqlite_get()
        results = {}
        for name, (charm, stdlib, count) in pairs.items():
            charm_t, stdlib_t = float("inf"), float("inf")
            for _ in range(args.repeats):
                charm_t = min(charm_t, best_time(charm, count, 1))
                stdlib_t = min(stdlib_t, best_time(stdlib, count, 1))
            results[name] = {
                "charm_kv_us": charm_t * 1e6,
                "sqlite3_us": stdlib_t * 1e6,
                "ratio": stdlib_t / charm_t,
            }
        kv.close()
        db.close()
    return results


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
