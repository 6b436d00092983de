"""`make test` runs pytest through tests/crash_report.sh: a native crash names its test and native stack."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "crash_report.sh"

_TESTS = """
import ctypes

def test_fine():
    pass

def test_native_crash():
    ctypes.string_at(0)  # a segfault in C, as a decoder's would be
"""


def _run(tmp_path: Path, *select: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_boom.py").write_text(_TESTS)
    cmd = ["bash", str(SCRIPT), sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "_current_test",
           "test_boom.py", *select]
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def _cores(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name == "core" or p.name.startswith("core.")]


def test_a_native_crash_names_the_test_and_its_stack(tmp_path: Path) -> None:
    proc = _run(tmp_path)
    assert proc.returncode == 128 + 11, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "died of signal 11 (SEGV)" in proc.stdout
    assert "== in test: test_boom.py::test_native_crash" in proc.stdout
    pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    if pattern.startswith("core") and shutil.which("gdb"):
        assert "native stack of the crashing thread" in proc.stdout
        assert "string_at" in proc.stdout  # the C function that faulted
    assert _cores(tmp_path) == []  # gigabytes in a real run: never left behind


def test_a_passing_run_keeps_its_status_and_says_nothing_more(tmp_path: Path) -> None:
    proc = _run(tmp_path, "-k", "fine")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "1 passed" in proc.stdout and "died of signal" not in proc.stdout
    assert _cores(tmp_path) == []
