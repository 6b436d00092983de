"""The Triton kernels compile for the GPUs we target, without a GPU (`babyfast.kernels.compile_check`).

The interpreter tests check the kernels' arithmetic but never compile them; here Triton's compiler and
ptxas build every block config for sm_90 (H100) and the configs `BABYFAST_AUTOTUNE=0` launches on sm_80
(A100) and sm_89 (L4, RTX 4090), from the arguments the real host code passes. The shared-memory estimate
that decides which configs may launch must bound what the compiler allocates.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from babyfast.kernels import _runtime
from babyfast.kernels import _attention_triton as fa

pytestmark = pytest.mark.slow

_ATTENTION_KERNELS = {"fwd", "dkdv", "dq", "_bwd_delta_kernel"}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compile-check")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp / "triton-cache")  # a real compile, and nothing in the user's ~/.triton
    rows = []
    for args in (["--arch", "90"], ["--arch", "80", "89", "--quick"]):
        out = tmp / f"{args[1]}.json"
        proc = subprocess.run([sys.executable, "-m", "babyfast.kernels.compile_check", *args, "--json", str(out)],
                              env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"compile_check {args} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        data = json.loads(out.read_text())
        assert data["problems"] == []
        rows += data["rows"]
    return rows


def _compiled(rows, **match):
    return [r for r in rows if r["status"] == "compiled" and all(r[k] == v for k, v in match.items())]


def test_every_profile_compiles_every_kernel(report):
    from babyfast.kernels.compile_check import PROFILES

    for arch in (90, 80, 89):
        for profile in PROFILES:
            kernels = {r["kernel"] for r in _compiled(report, arch=arch, profile=profile.name)}
            expected = _ATTENTION_KERNELS if profile.name.startswith("attention") else {"copy", "embed"}
            assert kernels == expected, (arch, profile.name)


def test_every_config_compiles_for_sm90_within_its_estimate(report):
    rows = [r for r in report if r["arch"] == 90]
    assert not [r for r in rows if r["status"] not in ("compiled", "pruned")]
    for spec in fa.SPECS.values():  # the bf16 training shapes leave no config out on an H100
        got = {r["config"] for r in _compiled(rows, kernel=spec.name, profile="attention bf16 D64 N197 H6 bnhd")}
        assert got == {str(c) for c in spec.configs}
    for r in rows:
        if "estimate" in r and r["status"] == "compiled":
            assert r["shared"] <= r["estimate"] + _runtime._SHARED_MEMORY_MARGIN <= r["limit"], r


def test_half_precision_uses_the_tensor_cores_of_each_architecture(report):
    # the tuned configs; the last resorts (too few rows for a Hopper warpgroup) only run where nothing fits
    last = {str(c) for c in fa._LAST_RESORT.values()}
    for arch, family in ((90, "wgmma"), (80, "mma"), (89, "mma")):
        rows = [r for r in _compiled(report, arch=arch) if r["kernel"] in ("fwd", "dkdv", "dq", "embed")]
        half = [r for r in rows if (" bf16 " in r["profile"] or " fp16 " in r["profile"]) and r["config"] not in last]
        assert half and all(r["tensor_cores"] == family for r in half), arch
        # fp32 stays exact: FMA, never tf32 tensor cores
        assert all(r["tensor_cores"] == "none" for r in rows if " fp32 " in r["profile"])


def test_no_register_spills(report):
    spilled = [(r["arch"], r["profile"], r["kernel"], r["config"], r["local"]) for r in report
               if r["status"] == "compiled" and r["local"] > 0]
    assert not spilled


def test_small_shared_memory_gpus_fall_back_to_the_last_resort_configs(report):
    # fp32 at head dim 128 fits none of the tuned configs in the ~100 KB of an sm_89
    for name, config in fa._LAST_RESORT.items():
        (row,) = _compiled(report, arch=89, profile="attention fp32 D128 N3136", kernel=name)
        assert row["config"] == str(config)


def test_capture_needs_compiled_kernels():
    # this process interprets the kernels (conftest), and an interpreted kernel cannot be compiled
    if not _runtime.interpreting():
        pytest.skip("kernels are compiled in this process")
    with pytest.raises(RuntimeError, match="needs compiled Triton kernels"):
        with _runtime.captured_launches():
            pass
