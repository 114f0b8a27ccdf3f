#!/usr/bin/env bash
# The GPU figure of issue 11, prepared to run once on a lent device machine (one H200).
#
# Step 1, here (the device machine reaches no package index): fetch the pure-Python and
# cp312 wheels that its image lacks into a git-ignored folder,
#
#   echo /.device/ >> .git/info/exclude
#   pip download --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --no-deps \
#       -d .device/wheels quimb==1.16.0 cotengra==0.8.3 autoray==0.11.0 symmray==0.5.0 \
#       cytoolz toolz h5netcdf
#
# Step 2, the device tool's run (about 10 minutes; everything comes back under $OUT):
#
#   run(command="bash benchmarks/device_gpu_check.sh", carry=[".device"], timeout_s=590)
#
# It measures like="cupy" (dense tensors on the GPU; the U(1) blocks run on numpy only)
#   a) all-to-all N = 30, f_eff = 4, W = 2, one rung at max_bond = 128, against permutational;
#   b) the magic-angle chain N = 100 (spacing 0.1, W = 2), the ladder 32, 64, 128 within 300 s.
# The CPU side of the comparison is benchmarks/RESULTS.md (same commands with --like numpy).
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -m pip install -q --no-index --find-links .device/wheels quimb cotengra autoray symmray h5netcdf
  python3 -m pip install -q --no-deps --no-build-isolation -e .
  python3 -c "import cupy, mpsync, symmray, quimb; print('cupy', cupy.__version__, 'quimb', quimb.__version__)"
  git rev-parse --short HEAD 2>/dev/null || true
} 2>&1 | tee "$OUT/setup.txt"
timeout 240 python3 benchmarks/bench_mpo.py --all-to-all --n 30 --f-eff 4 --W 2 --max-bond 128 \
    --like cupy --threads 4 2>&1 | tee "$OUT/gpu_all_to_all_n30_chi128.txt"
timeout 330 python3 benchmarks/bench_mpo.py --n 100 --ladder 32 64 128 --time-budget 300 \
    --like cupy --threads 4 2>&1 | tee "$OUT/gpu_chain_n100_ladder128.txt"
