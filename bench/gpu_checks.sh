#!/usr/bin/env bash
# The GPU checks of ../shared/GPU.md, in its order of value, as one prepared command per device call
# (the device tool's README: one short script, a timeout that leaves time to rerun it):
#
#   . .gpu/install.sh; bash bench/gpu_checks.sh base   carry: .gpu/install.sh .gpu/base
#   . .gpu/install.sh; bash bench/gpu_checks.sh dali   carry: .gpu/install.sh .gpu/dali0..3 (one per call
#                                                      first, as GPU.md says, while the machine stays warm)
#
# Every step has its own time limit and tees its log to $OUT/<step>.log, so a step that hangs costs its
# limit, not the call, and a call stopped at its limit still brings back what the finished steps wrote.
# The benchmarks write their JSON under $OUT; copy it into bench/results/ with the logs. The limits of
# one part add up to under 10 minutes (base 590 s): call with timeout_s=600.
set -u
: "${OUT:?run this on the device machine, where the tool sets \$OUT}"
part=${1:-base}
mkdir -p "$OUT"

step() {
  local name=$1 limit=$2
  shift 2
  echo "== $name (limit ${limit}s): $*" | tee "$OUT/$name.log"
  local start=$SECONDS
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$OUT/$name.log"
  echo "== $name: exit ${PIPESTATUS[0]} after $((SECONDS - start)) s" | tee -a "$OUT/$name.log"
}

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)"
} 2>&1 | tee "$OUT/machine.log"

case $part in
  base)
    step build 120 python3 -m pip install --no-deps --no-build-isolation -e . -q
    step gpu_tests 150 python3 -m pytest -q -m gpu tests/test_attention.py tests/test_patchify.py \
      tests/test_kernel_backends.py tests/test_augment.py
    step bench_loader_gpu 100 python3 -m bench.loader_gpu --out "$OUT" --batches 30
    step bench_attention 75 python3 -m bench.kernels --out "$OUT" --only attention
    step bench_patchify 45 python3 -m bench.kernels --out "$OUT" --only patchify
    step bench_train 100 python3 -m bench.train --out "$OUT" --steps 4
    ;;
  dali)
    step build 120 python3 -m pip install --no-deps --no-build-isolation -e . -q
    step loader_gpu_tests 120 python3 -m pytest -q -m gpu tests/test_loader_gpu.py tests/test_augment.py \
      tests/test_store_dali.py
    step bench_loader_gpu 120 python3 -m bench.loader_gpu --out "$OUT"
    step bench_train_e2e 150 python3 -m bench.train --out "$OUT" --e2e --e2e-steps 30
    ;;
  *)
    echo "usage: bash bench/gpu_checks.sh base|dali" >&2
    exit 2
    ;;
esac
