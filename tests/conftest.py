import os
import sys

# test helpers (_media.py) import by name; --import-mode=importlib does not put tests/ on sys.path
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# Triton kernels run through the interpreter on the CPU; this must be set before any kernel module
# (and triton itself) is imported, which is why it lives at the top of conftest. On a CUDA machine the
# kernels are compiled: tests marked `interpreter` (Triton on CPU tensors) skip there, `gpu` ones run.
# BABYFAST_NO_INTERPRET=1 keeps the interpreter off on a CPU machine too (those tests then skip).
if not os.environ.get("BABYFAST_NO_INTERPRET"):
    try:
        import torch

        _cuda = torch.cuda.is_available()
    except ImportError:
        _cuda = False
    if not _cuda:
        os.environ.setdefault("TRITON_INTERPRET", "1")

import tempfile

import pytest

# `backend="auto"` caches its measurements; tests must not write into the user's ~/.cache
os.environ.setdefault("BABYFAST_CACHE_DIR", tempfile.mkdtemp(prefix="babyfast-test-cache-"))

# test files whose `gpu` tests time and check compiled Triton kernels at full size
_TRITON_TEST_FILES = {"test_attention.py", "test_patchify.py", "test_kernel_backends.py"}


# writes the id of the running test where crash_report.sh (make test) can name it after a native crash
pytest_plugins = ["_current_test"]


def pytest_configure(config):
    config.addinivalue_line("markers", "interpreter: runs Triton kernels on CPU tensors through the Triton "
                                       "interpreter; skipped where the kernels are compiled")


def _triton_interpreting() -> bool:
    """Whether the Triton kernels of this process are interpreted (decided when they were imported)."""
    try:
        from babyfast.kernels._runtime import interpreting
    except ImportError:
        return False
    return interpreting()


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    interpreting = None
    if has_cuda or any(item.get_closest_marker("interpreter") for item in items):
        interpreting = _triton_interpreting()
    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    skip_interpreter = pytest.mark.skip(reason="needs the Triton interpreter (TRITON_INTERPRET=1 when the kernels "
                                               "are imported); the Triton kernels of this run are compiled")
    skip_interpreted_gpu = pytest.mark.skip(reason="TRITON_INTERPRET is set: full-size GPU kernel tests need "
                                                   "compiled Triton kernels")
    for item in items:
        if "gpu" in item.keywords:
            if not has_cuda:
                item.add_marker(skip_gpu)
            elif interpreting and os.path.basename(str(item.fspath)) in _TRITON_TEST_FILES:
                item.add_marker(skip_interpreted_gpu)
        if item.get_closest_marker("interpreter") and not interpreting:
            item.add_marker(skip_interpreter)
