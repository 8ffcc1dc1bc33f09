#!/usr/bin/env bash
# What issue 3 needs from a lent GPU machine, in three device calls of under 10 minutes each:
#
#   bash benchmarks/gpu_session.sh OUT tests   # build the native extension, run `pytest -m cuda`
#   bash benchmarks/gpu_session.sh OUT bench   # benchmarks/bench_gpu.py: copy bw, sizes, 7B set
#   bash benchmarks/gpu_session.sh OUT tune    # the histogram kernel's launch sweep
#
# (each call builds the extension again when the machine was given back in between).
#
# The device image has torch, triton, pytest and hypothesis but not pybdm (the tests' oracle), so
# carry its wheel. Here, once per session, in the repository root:
#
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps -d .whl pybdm==0.1.0 "setuptools<81"
#
# then call the device tool's run with carry [".whl"] and the commands above with OUT="$OUT".
# Logs and results land in OUT: versions.txt, nvidia-smi.txt, build.log, cuda-tests.log,
# bench.md / bench.json, tune.md / tune.json (copy the tables into benchmarks/RESULTS.md).
set -uo pipefail
out=${1:?usage: gpu_session.sh OUT_DIR tests|bench|tune}
phase=${2:?usage: gpu_session.sh OUT_DIR tests|bench|tune}
mkdir -p "$out"
export PYTHONUNBUFFERED=1

if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { echo "gpu_session: could not install the carried wheels" >&2; exit 1; }
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())" \
    | tee "$out/versions.txt"

# The native CPU extension, in place (the CUDA tests compare against it on the CPU).
python3 setup.py build_ext --inplace > "$out/build.log" 2>&1 || { echo "gpu_session: build failed, see build.log" >&2; exit 1; }

case "$phase" in
    tests) timeout 500 python3 -m pytest -m cuda -q -p no:cacheprovider tests/ 2>&1 | tee "$out/cuda-tests.log" ;;
    bench) timeout 500 python3 benchmarks/bench_gpu.py --out "$out/bench" 2>&1 | tee "$out/bench.log" ;;
    tune) timeout 500 python3 benchmarks/bench_gpu.py --out "$out/tune" --tune-only 2>&1 | tee "$out/tune.log" ;;
    *) echo "gpu_session: unknown phase '$phase' (tests, bench or tune)" >&2; exit 2 ;;
esac
rc=${PIPESTATUS[0]}
echo "gpu_session $phase: exit $rc"
exit "$rc"
