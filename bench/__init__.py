"""babyfast's benchmarks (not installed; run from the repository root).

Two kinds, one results helper:

- scripts, run as modules (`python -m bench.loader`, `python -m bench.reader`, ...): side-by-side
  measurements against peers, each writing bench/results/<name>.json through `bench._common.write_result`
  (machine, command and date stamped); `python -m bench.report` renders the README's "Performance" section
  from those files;
- pytest-benchmark micro-benchmarks in bench/micro/ (`make bench-quick`), compared with the baseline saved
  in bench/results/baseline/ (`make bench-baseline`).
"""
