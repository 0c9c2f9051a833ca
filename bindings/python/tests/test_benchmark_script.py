"""The micro benchmark still runs (tiny sizes; the ratio is not asserted here: see
benchmarks/bench_get_set.py and the README for measured figures)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_get_set.py"


def test_benchmark_smoke(capsys):
    spec = importlib.util.spec_from_file_location("bench_get_set", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        by_size = module.main(["--n", "200", "--writes", "5", "--repeats", "1"])
    finally:
        del sys.modules[spec.name]
    assert set(by_size) == {200}
    results = by_size[200]
    assert set(results) == {
        "get (kv[key])",
        "get (kv.get(key))",
        "get, missing key",
        "set (durable)",
    }
    for figures in results.values():
        assert figures["charm_kv_us"] > 0 and figures["sqlite3_us"] > 0
    assert "ratio" in capsys.readouterr().out
