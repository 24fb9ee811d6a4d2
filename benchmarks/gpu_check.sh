#!/usr/bin/env bash
# One short check of the CUDA training path on a machine with one GPU, in a few minutes, with no
# dataset and no network (synthetic CIFAR-10): CUDA smoke evaluation, the gpu budget timed on three
# architectures, determinism, out-of-memory handling, evaluations in parallel worker processes.
# Writes gpu_check.json and gpu_check.md under $OUT (else runs/gpu_check); exit status 1 when a
# step failed. `--dry-run` runs the same steps on the CPU at tiny sizes (CI does). Steps and
# figures: benchmarks/gpu_check.py.
#
#   bash benchmarks/gpu_check.sh            # on the GPU machine
#   bash benchmarks/gpu_check.sh --dry-run  # anywhere
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then
        PYTHON=.venv/bin/python
    else
        PYTHON="$(command -v python3 || command -v python)"
    fi
fi
# The checkout itself, importable without an install (the spawned workers need it too).
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# Set before CUDA starts: cuBLAS reads it once per process (deterministic matmuls need it).
export CUBLAS_WORKSPACE_CONFIG="${CUBLAS_WORKSPACE_CONFIG:-:4096:8}"
exec "$PYTHON" benchmarks/gpu_check.py --out "${OUT:-runs/gpu_check}" "$@"
