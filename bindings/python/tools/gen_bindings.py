#!/usr/bin/env python3
"""Generates ``charm_kv/_bindings.py`` (ctypes declarations) from ``include/charm_kv.h``.

The header is cbindgen output with a fixed, regular shape, so a careful parser of that
shape is enough (no C preprocessor, no pycparser). Anything it does not recognise is an
error rather than a guess: a new C type needs a rule here first.

Usage (from the repository root)::

    python3 bindings/python/tools/gen_bindings.py            # rewrite the module
    python3 bindings/python/tools/gen_bindings.py --check    # exit 1 if it is stale

``tests/test_bindings.py`` runs the same comparison, so a header change without a
regenerated module fails the Python tests.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE_ROOT = HERE.parent
DEFAULT_HEADER = PACKAGE_ROOT.parent.parent / "include" / "charm_kv.h"
DEFAULT_OUTPUT = PACKAGE_ROOT / "charm_kv" / "_bindings.py"

# C scalar types and their ctypes equivalents. Enum typedefs are uint32_t in C.
SCALARS = {
    "bool": "c_bool",
    "uint8_t": "c_uint8",
    "uint16_t": "c_uint16",
    "uint32_t": "c_uint32",
    "uint64_t": "c_uint64",
    "int64_t": "c_int64",
    "size_t": "c_size_t",
    "charm_kv_status": "c_uint32",
    "charm_kv_sync_phase": "c_uint32",
    "charm_kv_remote_state": "c_uint32",
}


@dataclass
class Param:
    ctype: str  # the C type, normalised ("const uint8_t *")
    name: str


@dataclass
class Function:
    name: str
    ret: str
    params: list[Param]


@dataclass
class Header:
    version: str
    enums: dict[str, list[tuple[str, int, str]]]  # C enum name -> (member, value, doc)
    opaque: list[str]
    structs: dict[str, list[Param]]
    callbacks: dict[str, Function]
    functions: list[Function]


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def _normalise(ctype: str) -> str:
    """'const struct charm_kv_store *' -> 'const charm_kv_store *'."""
    ctype = re.sub(r"\bstruct\s+", "", ctype)
    ctype = re.sub(r"\s*\*\s*", " *", ctype)
    return re.sub(r"\s+", " ", ctype).strip()


def _split_decl(decl: str) -> Param:
    """'const uint8_t *key' -> Param('const uint8_t *', 'key')."""
    decl = " ".join(decl.split())
    m = re.fullmatch(r"(.*?[\s*])(\w+)", decl)
    if not m:
        raise ValueError(f"cannot parse declaration {decl!r}")
    return Param(_normalise(m.group(1)), m.group(2))


def _params(text: str) -> list[Param]:
    text = " ".join(text.split())
    if text in ("", "void"):
        return []
    return [_split_decl(p) for p in text.split(",")]


def parse(text: str) -> Header:
    m = re.search(r'#define CHARM_KV_VERSION "([^"]+)"', text)
    if not m:
        raise ValueError("no CHARM_KV_VERSION in the header")
    version = m.group(1)

    enums: dict[str, list[tuple[str, int, str]]] = {}
    for m in re.finditer(r"\benum (\w+)\s*(?:#if.*?#endif[^\n]*\n)?\s*\{(.*?)\};", text, re.S):
        members = []
        for doc, member, value in re.findall(
            r"(?:/\*\*(.*?)\*/\s*)?(\w+) = (\d+),", m.group(2), re.S
        ):
            doc = " ".join(line.strip(" *") for line in doc.splitlines()).strip()
            members.append((member, int(value), " ".join(doc.split())))
        enums[m.group(1)] = members

    code = _strip_comments(text)
    # The C++ guards are not C declarations.
    code = re.sub(r"#[^\n]*", " ", code)
    opaque = re.findall(r"typedef struct (\w+) \1;", code)
    structs = {}
    for m in re.finditer(r"typedef struct (\w+) \{(.*?)\} \1;", code, re.S):
        fields = [f.strip() for f in m.group(2).split(";") if f.strip()]
        structs[m.group(1)] = [_split_decl(f) for f in fields]
    callbacks = {}
    for m in re.finditer(r"typedef (\w+) \(\*(\w+)\)\((.*?)\);", code, re.S):
        callbacks[m.group(2)] = Function(m.group(2), m.group(1), _params(m.group(3)))
    functions = []
    for m in re.finditer(r"^([\w ]+?[\s*]+)(charm_kv_\w+)\(([^;]*?)\);", code, re.M | re.S):
        functions.append(Function(m.group(2), _normalise(m.group(1)), _params(m.group(3))))
    # Every call-like name in the declarations must have been understood.
    declared = set(re.findall(r"\b(charm_kv_\w+)\s*\(", code))
    missed = declared - {f.name for f in functions}
    if missed or not functions:
        raise ValueError(f"unparsed function declarations: {sorted(missed)}")
    return Header(version, enums, opaque, structs, callbacks, functions)


class Types:
    """Maps normalised C types to ctypes expressions."""

    def __init__(self, header: Header):
        self.records = set(header.opaque) | set(header.structs)
        self.callbacks = set(header.callbacks)

    def value(self, ctype: str, *, param: bool) -> str:
        """The ctypes type of a parameter (``param``), field, pointee or return value.

        Byte buffers: a borrowed input ``const uint8_t *`` (a parameter, or the
        ``data`` of a ``charm_kv_slice``) is ``c_char_p``, so a Python ``bytes`` object
        is passed without a copy (its length travels beside it, so embedded NULs are
        fine; a struct field keeps a reference to the object). A ``uint8_t *`` the
        library fills (struct fields of owned buffers) is ``c_void_p``: the address,
        read with ``PyBytes_FromStringAndSize``. A slice the library points at its own
        bytes (``charm_kv_iter_next``) is read through a ``c_void_p`` view of its
        ``data`` field, never through the ``c_char_p`` (which stops at a NUL).
        """
        const = ctype.startswith("const ")
        base = ctype[len("const ") :] if const else ctype
        depth = base.count("*")
        base = base.replace("*", "").strip()
        if depth == 0:
            if base == "void":
                return "None"
            if base in SCALARS:
                return SCALARS[base]
            if base in self.callbacks or base in self.records:
                return base
            raise ValueError(f"no ctypes rule for C type {ctype!r}")
        if depth == 1:
            if base == "char":
                return "c_char_p"
            if base == "uint8_t":
                return "c_char_p" if const else "c_void_p"
            if base == "void":
                return "c_void_p"
            return f"POINTER({self.value(base, param=False)})"
        inner = ("const " if const else "") + base + " " + "*" * (depth - 1)
        return f"POINTER({self.value(inner, param=False)})"


def _c_decl(p: Param) -> str:
    """Param('const charm_kv_store *', 'store') -> 'const charm_kv_store *store'."""
    base = p.ctype.replace("*", "").strip()
    return f"{base} {'*' * p.ctype.count('*')}{p.name}"


def _isort_key(name: str) -> tuple:
    """isort's order: CONSTANTS, Classes, then others; numbers compared as numbers."""
    kind = 0 if name.isupper() else 1 if name[0].isupper() else 2
    parts = re.split(r"(\d+)", name.lower())
    return (kind, [int(p) if p.isdigit() else p for p in parts])


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.removeprefix("charm_kv_").split("_"))


def render(header: Header) -> str:
    types = Types(header)
    out: list[str] = []
    w = out.append
    w('"""ctypes declarations of include/charm_kv.h (the charm-kv C ABI).')
    w("")
    w("Generated by bindings/python/tools/gen_bindings.py: do not edit. The test suite")
    w("fails when this module no longer matches the header.")
    w('"""')
    w("")
    w("# ruff: noqa: E501")
    w("import enum")
    w("from ctypes import (")
    imports_at = len(out)  # filled in at the end: only the names used
    w(")")
    w("")
    major, minor, patch = header.version.split(".")
    w("#: CHARM_KV_VERSION of the header these declarations come from.")
    w(f'HEADER_VERSION = "{header.version}"')
    w(f"HEADER_VERSION_INFO = ({int(major)}, {int(minor)}, {int(patch)})")
    for cname, members in header.enums.items():
        prefix = cname.upper() + "_"
        w("")
        w("")
        w(f"class {_camel(cname)}(enum.IntEnum):")
        w(f'    """``{cname}``: a ``uint32_t`` in C."""')
        w("")
        for member, value, doc in members:
            if not member.startswith(prefix):
                raise ValueError(f"{member} lacks the prefix {prefix}")
            if doc:
                w(f"    #: {doc}")
            w(f"    {member.removeprefix(prefix)} = {value}")
    for name in header.opaque:
        w("")
        w("")
        w(f"class {name}(Structure):")
        w(f'    """Opaque ``{name}``: only ever used through a pointer."""')
    for name, fields in header.structs.items():
        w("")
        w("")
        w(f"class {name}(Structure):")
        w(f'    """``struct {name}``."""')
        w("")
        w("    _fields_ = [")
        for field in fields:
            w(f'        ("{field.name}", {types.value(field.ctype, param=False)}),')
        w("    ]")
    for name, fn in header.callbacks.items():
        args = ", ".join(
            [types.value(fn.ret, param=False)]
            + [types.value(p.ctype, param=True) for p in fn.params]
        )
        w("")
        w("")
        w(f"#: ``{name}``: {', '.join(p.name for p in fn.params)}.")
        w(f"{name} = CFUNCTYPE({args})")
    w("")
    w("#: Every function of the header: name -> (restype, argtypes).")
    w("FUNCTIONS = {")
    for fn in header.functions:
        w(f'    "{fn.name}": (')
        w(f"        {types.value(fn.ret, param=False)},")
        if not fn.params:
            w("        [],")
        else:
            w("        [")
            for p in fn.params:
                w(f"            {types.value(p.ctype, param=True)},  # {_c_decl(p)}")
            w("        ],")
        w("    ),")
    w("}")
    body = "\n".join(out[imports_at:])
    used = sorted(
        set(
            re.findall(
                r"\b(CFUNCTYPE|POINTER|Structure|c_(?:bool|char_p|void_p|size_t|u?int\d+))\b", body
            )
        ),
        key=_isort_key,
    )
    out[imports_at:imports_at] = [f"    {name}," for name in used]
    return "\n".join(out) + "\n"


def generate(header_path: Path = DEFAULT_HEADER) -> str:
    return render(parse(header_path.read_text(encoding="utf-8")))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--header", type=Path, default=DEFAULT_HEADER)
    ap.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    ap.add_argument("--check", action="store_true", help="fail if the output is stale")
    args = ap.parse_args(argv)
    text = generate(args.header)
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
