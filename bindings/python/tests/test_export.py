"""export / import_: the JSON lines of ``charm-kv export``, through the library's codec."""

from __future__ import annotations

import io
import json

import pytest

import charm_kv


def test_export_writes_json_lines_and_import_reads_them_back(open_kv):
    source = open_kv("source")
    source.update({b"b": b"text", b"a\xff": b"\x00\x01", b"c": b""})
    buffer = io.BytesIO()
    source.export(buffer)
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert lines == [
        {"key": "Yf8=", "value": "\x00\x01", "key_base64": True, "value_base64": False},
        {"key": "b", "value": "text", "key_base64": False, "value_base64": False},
        {"key": "c", "value": "", "key_base64": False, "value_base64": False},
    ]
    part = io.BytesIO()
    source.export(part, prefix=b"b")
    assert part.getvalue().count(b"\n") == 1 and b'"text"' in part.getvalue()

    copy = open_kv("copy")
    copy[b"old"] = b"x"
    assert copy.import_(io.BytesIO(buffer.getvalue()), replace=True) == 3
    assert dict(copy.items()) == dict(source.items())
    # bytes and str work as well; without replace other keys stay.
    assert copy.import_('{"key":"n","value":"1"}\n') == 1
    assert copy[b"n"] == b"1" and copy[b"b"] == b"text"


def test_a_malformed_line_is_named_and_changes_nothing(kv):
    kv[b"keep"] = b"1"
    text = b'{"key":"x","value":"1"}\n\n{"key":"","value":"2"}\n'
    with pytest.raises(charm_kv.InvalidArgumentError, match="line 3: key cannot be empty"):
        kv.import_(text, replace=True)
    assert list(kv.items()) == [(b"keep", b"1")]
    with pytest.raises(TypeError):
        kv.import_(5)  # type: ignore[arg-type]
