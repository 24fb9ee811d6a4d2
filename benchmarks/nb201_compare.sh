#!/usr/bin/env bash
# The NAS-Bench-201 comparison of docs/results.md: 100 seeds per agent, 12,000 simulated seconds
# per search (the benchmark's protocol), every agent of the zoo that searches the cell space.
set -euo pipefail
cd "$(dirname "$0")/.."
export NAS_GYM_DATA="${NAS_GYM_DATA:-$(cd ../shared/data && pwd)}"
out="${1:-runs/nb201-compare}"
time .venv/bin/nas-gym compare --env NASBench201-v0 \
    --agents random,evolution,reinforce,ppo,maskable-ppo --seeds 100 --budget-seconds 12000 --out "$out"
