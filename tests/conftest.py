import os
import sys

# test helpers (_media.py) import by name; --import-mode=importlib does not put tests/ on sys.path
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# Triton kernels run through the interpreter on the CPU; this must be set before any kernel module
# (and triton itself) is imported, which is why it lives at the top of conftest.
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


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
