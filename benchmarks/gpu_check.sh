#!/usr/bin/env bash
# The GPU speed check of issue 7, as ONE command for a session that is lent an H100/H200.
#
# On the device machine (torch preinstalled, no internet), from the repository root:
#     bash benchmarks/gpu_check.sh            # < 8 minutes; JSON + log in $OUT
# It runs benchmarks/bench_speed_gpu.py (BEATs-base / EAT-base / EfficientNet-B0: SL train step and
# embedding, avexlab fast vs eager vs avex, MFU, bf16-vs-fp32 and flex-vs-sdpa numerics).
#
# The avex baseline needs the avex package, which is not an avexlab dependency and cannot be installed
# there. Build a bundle on the CPU host first (needs the package registry), then carry it:
#     bash benchmarks/gpu_check.sh bundle      # -> .cache/avexlib.tar.xz (~35 MB; .cache/ is git-ignored)
#     run(command="bash benchmarks/gpu_check.sh", carry=[".cache/avexlib.tar.xz"], timeout_s=540)
# Without the bundle the avex rows say why they were skipped and everything else still runs.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-runs/bench}"
mkdir -p "$OUT"

if [[ "${1:-}" == "bundle" ]]; then
    PIP="${PIP:-.venv/bin/pip}"
    rm -rf .cache/avexlib && mkdir -p .cache
    # avex 1.4.0 and what `import avex.models.beats_model, avex.models.efficientnet` pulls in beyond
    # avexlab's own dependencies (found by importing until it worked, 2026-11-26).
    "$PIP" install --quiet --no-deps --target .cache/avexlib avex==1.4.0 pydantic-settings python-dotenv \
        gcsfs aiohttp multidict yarl propcache aiohappyeyeballs aiosignal frozenlist decorator \
        google-auth google-api-core google-cloud-storage google-auth-oauthlib googleapis-common-protos \
        protobuf google-crc32c google-resumable-media google-cloud-core grpc-google-iam-v1 grpcio proto-plus \
        cryptography requests-oauthlib oauthlib s3fs aiobotocore botocore jmespath wrapt aioitertools h5py \
        omegaconf antlr4-python3-runtime einops
    tar -C .cache -cJf .cache/avexlib.tar.xz avexlib
    ls -la .cache/avexlib.tar.xz
    exit 0
fi

PY="${PYTHON:-python3}"
[[ -x .venv/bin/python ]] && ! "$PY" -c "import torch" 2>/dev/null && PY=.venv/bin/python
if [[ -f .cache/avexlib.tar.xz && ! -d .cache/avexlib ]]; then
    tar -C .cache -xJf .cache/avexlib.tar.xz
fi
export AVEX_PATH="${AVEX_PATH:-$PWD/.cache/avexlib}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/gpu.txt" 2>&1 || true
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
timeout 480 "$PY" benchmarks/bench_speed_gpu.py --out "$OUT/speed_gpu.json" --budget-s 400 "${@}" \
    2>&1 | tee "$OUT/speed_gpu.log"
