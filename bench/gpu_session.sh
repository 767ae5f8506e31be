#!/usr/bin/env bash
# One GPU session in one go (~8 minutes): the CUDA tests, then bench/gpu_extract.py, logs in $OUT.
#
# Prepare on the CPU machine, once, from the repository root (Python 3.12 wheels the GPU machine
# lacks; the GPU machine has torch, torchvision, timm, numpy, pandas, Pillow, pyarrow, tqdm):
#     ../shared/tools/device-wheels.sh pytest pytest-timeout iniconfig pluggy packaging
# (Ray's wheel is larger than what travels; the bench then reports ray_ratio=not_measured.)
# Then the device tool: run(command="bash bench/gpu_session.sh", carry=[".device-wheels"], timeout_s=600).
# Outside the device tool: OUT=/some/folder bash bench/gpu_session.sh (wheels already installed).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/recsys-gpu-session}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 RECSYS_CACHE_DIR=${RECSYS_CACHE_DIR:-/tmp/recsys-gpu-cache}
PY=${PYTHON:-python3}
if compgen -G ".device-wheels/*.whl" >/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .device-wheels/*.whl \
    || { echo "error: the wheels in .device-wheels did not install"; exit 1; }
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $PY -c "import torch, torchvision, timm, av; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'timm', timm.__version__, 'av', av.__version__, 'cuda', torch.cuda.is_available())"
  nproc
} 2>&1 | tee "$OUT/machine.txt"

# 1. the tests that exercise extraction on CUDA (the rest of the suite is CPU-only arithmetic or
#    needs the dashboard's packages); the suite's own timeout guards against a hang.
tests=(tests/test_features_gpu.py tests/test_features_extract.py tests/test_features_video.py
       tests/test_features_trailers_stream.py tests/test_features_config.py tests/test_features_store.py)
if $PY -c "import numba" 2>/dev/null; then tests+=(tests/test_models_fm_parity.py tests/test_models_mf.py); fi
timeout 240 $PY -m pytest -q -p no:cacheprovider -o addopts="-ra" --timeout 200 "${tests[@]}" 2>&1 | tee "$OUT/tests.log"
tests_rc=${PIPESTATUS[0]}

# 2. throughput on realistic media (generated here), every backbone, trailers at 1 and 3 fps
timeout 330 $PY bench/gpu_extract.py --posters 2000 --trailers 16 --trailer-seconds 60 --naive 128 \
  --media-dir /tmp/recsys-bench-media 2>&1 | grep -v "Warning" | tee "$OUT/bench.log"
bench_rc=${PIPESTATUS[0]}

echo "tests_rc=$tests_rc bench_rc=$bench_rc" | tee -a "$OUT/bench.log"
grep -E "^device=" "$OUT/bench.log" | tail -n 1
