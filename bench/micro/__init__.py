"""pytest-benchmark micro-benchmarks of babyfast's hot paths on the CPU (`make bench-quick`).

Not collected by `make test` (pytest.ini's testpaths is tests/). Run from the repository root:

    make bench-quick        # all of them (< 5 min), compared with bench/results/baseline/
    make bench-baseline     # save this machine's baseline
    .venv/bin/python -m pytest bench/micro/test_decode.py --benchmark-only    # one file, no comparison

test_kernels_gpu.py (marked gpu, left out of bench-quick) times the CUDA kernels on a lent GPU.
"""
