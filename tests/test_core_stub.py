"""The shipped type stub `babyfast/_core.pyi` names exactly what the built extension holds (`make stubs`
regenerates it after a change to csrc/py)."""
from __future__ import annotations

import ast
from pathlib import Path

import babyfast._core as core

STUB = Path(__file__).resolve().parents[1] / "babyfast" / "_core.pyi"


def _public(names) -> set[str]:
    # __init__ is left out: pybind11 gives every class one, the stub writes it only where it takes arguments
    return {n for n in names if not n.startswith("_") or n in ("__getitem__", "__len__")}


def _stub_members() -> dict[str, set[str]]:
    tree = ast.parse(STUB.read_text())
    out: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            out[node.name] = set()
        elif isinstance(node, ast.ClassDef):
            out[node.name] = _public(n.name for n in node.body if isinstance(n, ast.FunctionDef))
    return out


def test_stub_names_the_extension() -> None:
    stub = _stub_members()
    runtime = {n: (_public(vars(getattr(core, n))) & _public(dir(getattr(core, n))) if isinstance(getattr(core, n), type)
                   else set()) for n in dir(core) if not n.startswith("_")}
    assert set(stub) == set(runtime), "babyfast/_core.pyi is stale: run `make stubs`"
    for name, members in runtime.items():
        assert stub[name] == members, f"{name}: stub {sorted(stub[name])} vs extension {sorted(members)}; run `make stubs`"
