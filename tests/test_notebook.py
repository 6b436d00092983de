"""The tutorial notebook (notebooks/train_your_baby_vfm.ipynb): kept in the repository without outputs,
written with public names only, and executed top to bottom on its small setting by this venv's own
kernel (a kernelspec written for the test, so no `ipykernel install` and no user kernel is involved)."""
from __future__ import annotations

import ast
import json
import re
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "train_your_baby_vfm.ipynb"
CELL_TIMEOUT = 300  # seconds; the whole small setting takes a few minutes on two CPU cores


def code_cells() -> list[str]:
    return ["".join(c["source"]) for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code"]


def test_committed_notebook_has_no_outputs() -> None:
    nb = json.loads(NOTEBOOK.read_text())
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"cell {i} has outputs: strip them before committing"
            assert cell.get("execution_count") is None, f"cell {i} has an execution count: strip it"
        assert "attachments" not in cell, f"cell {i} carries attachments"
    assert "widgets" not in nb["metadata"]


def test_notebook_uses_public_names_and_no_paths_of_a_machine() -> None:
    for source in code_cells():
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("babyfast"):
                parts = node.module.split(".") + [a.name for a in node.names]
                assert not any(p.startswith("_") for p in parts), f"private name imported: {ast.unparse(node)}"
            elif isinstance(node, ast.Import):
                for a in node.names:
                    assert not any(p.startswith("_") for p in a.name.split(".")), ast.unparse(node)
            elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.endswith("__"):
                pytest.fail(f"private attribute used: {ast.unparse(node)}")
        assert not re.search(r"['\"](/work|/tmp|/home|/root|~/)", source), "a path of this machine in the notebook"


def test_notebook_runs_on_its_small_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("ipykernel")
    # this interpreter (the venv's) as the kernel, found through JUPYTER_PATH: a user's kernels are not used
    spec = tmp_path / "jupyter" / "kernels" / "babyfast-notebook-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "babyfast (this venv)", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("BABYFAST_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("BABYFAST_NOTEBOOK_DIR", str(tmp_path / "work"))
    monkeypatch.delenv("BABYFAST_NOTEBOOK_SETTING", raising=False)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)  # a user's kernel has it unset (conftest sets it)
    monkeypatch.delenv("MPLBACKEND", raising=False)

    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name="babyfast-notebook-test", timeout=CELL_TIMEOUT,
                                     resources={"metadata": {"path": str(tmp_path)}})
    t = time.perf_counter()
    client.execute()  # raises CellExecutionError with the failing cell and its traceback
    seconds = time.perf_counter() - t
    print(f"notebook executed in {seconds:.0f} s")

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream" and o.name == "stdout")
    assert "setting: " in text and "BABYFAST_NOTEBOOK_SMALL is set" in text
    images = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.data]
    assert len(images) >= 10, f"only {len(images)} pictures drawn"
    work = tmp_path / "work"
    for run in ("videomae", "contrastive"):
        assert (work / run / "eval" / "report.png").is_file() and (work / run / "eval" / "report.md").is_file()
    assert len(json.loads((work / "videomae" / "eval" / "trajectory.json").read_text())) >= 3
